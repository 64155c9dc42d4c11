// Top's bitmap backup, taken only when this run is about to open top read-write: a commit by qemu-img, the drop of
// top's inconsistent bitmaps, or giving back clusters top leaked. The daemon's commit opens top read-only and needs none.
import { BACKUP_FILES, backUpVolume } from '../../../engine/backup-images.js';
import { bitmapsOf, isInUse } from '../../../qemu/types.js';
import { inspected, type MergeContext } from './context.js';

/** Backs up top's consistent bitmaps into the job's folder, durable in the journal before it returns, unless the journal has them. */
export async function backUpTop(context: MergeContext): Promise<void> {
  const { top, topInfo } = inspected(context);
  const { writer } = context;
  const bitmaps = bitmapsOf(topInfo).filter((b) => !isInUse(b));
  const recorded = new Set(writer.journal.backup?.top.bitmaps.map((b) => b.name) ?? []);
  if (bitmaps.every((b) => recorded.has(b.name))) return;
  const record = await backUpVolume(writer.store.backupDir(writer.key), BACKUP_FILES.top, top.realPath, topInfo, bitmaps);
  await writer.store.saveBackup(writer.key);
  // Durable before top is opened read-write: a crash from then on is repaired from this copy.
  await writer.update((j) => {
    j.backup = { base: j.backup?.base ?? { image: BACKUP_FILES.base, bitmaps: [] }, top: record };
  });
}
