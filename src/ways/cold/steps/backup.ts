// Step backup: copies of the bitmaps the merge keeps go into small images beside the journal (crash repair rebuilds
// broken bitmaps from them). Base's is made first; top's (nothing writes top's bitmaps before the commit) is made while
// the prune runs, and the prune step waits for it before it is recorded as done. Repeatable: a resumed run takes the
// backup again; the next durable write (the prune's start, before any bitmap changes) names the images.
import { startBitmapBackup } from '../../../engine/backup-images.js';
import type { Step } from '../../../engine/step.js';
import { startStorageDaemon } from '../../../qemu/qmp.js';
import { inspected, type MergeContext } from './context.js';

/** Starts the prune's qemu-storage-daemon now, when the prune will remove several bitmaps; it opens base only when the prune runs. */
function prewarmPruneDaemon(context: MergeContext): void {
  if (context.plan.bitmaps.prune.length < 2 || context.writer.isDone('prune') || context.pruneDaemon) return;
  // A daemon that could not start now is started again (or replaced by qemu-img) by the prune step itself.
  context.pruneDaemon = startStorageDaemon().catch(() => undefined);
}

/** The backup step. */
export const backupStep: Step<MergeContext> = {
  name: 'backup',
  journaling: () => 'repeatable',
  async run(context) {
    const { top, base, topInfo, baseInfo } = inspected(context);
    const { writer } = context;
    prewarmPruneDaemon(context);
    // The inspection was made under the chain's lock, just before: its bitmaps are still the chain's.
    const backup = await startBitmapBackup(
      writer.store.backupDir(writer.key),
      { realPath: top.realPath, info: topInfo },
      { realPath: base.realPath, info: baseInfo },
      context.plan.bitmaps.merge,
    );
    context.topBackup = backup.top;
    // Base's image is kept where the journal is (for a shared VG, on the shared storage) before the journal names it,
    // with the next write: that comes before any bitmap changes.
    await writer.store.saveBackup(writer.key);
    writer.stage((j) => {
      j.backup = backup.record;
    });
    return { top: backup.record.top.bitmaps.map((b) => b.name), base: backup.record.base.bitmaps.map((b) => b.name) };
  },
};
