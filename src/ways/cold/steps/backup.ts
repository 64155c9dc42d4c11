// Step backup: copies of the base bitmaps the merge keeps go into a small image beside the journal (crash repair
// rebuilds broken bitmaps from it), made in the run's qemu-storage-daemon with base open read-only (so that nothing
// marks base's bitmaps in-use before the copy is whole), or by qemu-img when the daemon is not installed. Top needs no
// copy here: the daemon's commit opens it read-only, and a commit by qemu-img takes top's copy just before it runs.
// Repeatable: a resumed run takes the backup again; the next durable write (the prune's start, before any bitmap
// changes) names the images.
import { join } from 'node:path';
import { rename } from 'node:fs/promises';
import { BACKUP_FILES, backedUp, backUpVolume, verifyBackupImage } from '../../../engine/backup-images.js';
import type { BackupImage } from '../../../engine/journal.js';
import type { Step } from '../../../engine/step.js';
import { removeDurable, syncDir } from '../../../os/atomic-file.js';
import { backupInDaemon } from '../../../qemu/daemon-bitmaps.js';
import { closeVolume, NODE, openVolume } from '../../../qemu/daemon-images.js';
import type { StorageDaemon } from '../../../qemu/qmp.js';
import { bitmapsOf, isInUse, type BitmapInfo } from '../../../qemu/types.js';
import { daemonOf, inspected, startDaemonAhead, type MergeContext } from './context.js';

/** Base's kept bitmaps copied into a new image by the daemon (base opened read-only, then closed), checked on disk. */
async function backUpInDaemon(daemon: StorageDaemon, context: MergeContext, kept: readonly BitmapInfo[]): Promise<BackupImage> {
  const { base, baseInfo } = inspected(context);
  const dir = context.writer.store.backupDir(context.writer.key);
  const image = join(dir, BACKUP_FILES.base);
  // Made under a temporary name and renamed when whole: a store that keeps backups elsewhere never takes a half-made one.
  const partial = join(dir, `.${BACKUP_FILES.base}.partial`);
  await removeDurable(image);
  await removeDurable(partial);
  const bitmaps = kept.map(backedUp);
  await openVolume(daemon, { node: NODE.base, path: base.realPath, driver: base.driver, readOnly: true });
  await backupInDaemon(daemon, NODE.base, partial, baseInfo['virtual-size'], bitmaps);
  await closeVolume(daemon, NODE.base, base.realPath);
  await verifyBackupImage(partial, bitmaps);
  await rename(partial, image);
  await syncDir(dir);
  return { image: BACKUP_FILES.base, bitmaps };
}

/** The backup step. */
export const backupStep: Step<MergeContext> = {
  name: 'backup',
  journaling: () => 'repeatable',
  async run(context) {
    const { base, baseInfo } = inspected(context);
    const { writer } = context;
    // Started now for the steps after this one, whether or not this one needs it.
    startDaemonAhead(context);
    const dir = writer.store.backupDir(writer.key);
    // The inspection was made under the chain's lock, just before: its bitmaps are still the chain's.
    const kept = bitmapsOf(baseInfo).filter((b) => context.plan.bitmaps.merge.includes(b.name) && !isInUse(b));
    await removeDurable(join(dir, BACKUP_FILES.top));
    let baseBackup: BackupImage = { image: BACKUP_FILES.base, bitmaps: [] };
    if (kept.length === 0) await removeDurable(join(dir, BACKUP_FILES.base));
    else {
      const daemon = await daemonOf(context);
      baseBackup = daemon ? await backUpInDaemon(daemon, context, kept) : await backUpVolume(dir, BACKUP_FILES.base, base.realPath, baseInfo, kept);
    }
    const record = { base: baseBackup, top: { image: BACKUP_FILES.top, bitmaps: [] } };
    // Base's image is kept where the journal is (for a shared VG, on the shared storage) before the journal names it,
    // with the next write: that comes before any bitmap changes.
    await writer.store.saveBackup(writer.key);
    writer.stage((j) => {
      j.backup = record;
    });
    return { top: [], base: baseBackup.bitmaps.map((b) => b.name) };
  },
};
