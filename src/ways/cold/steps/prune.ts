// Step prune: removes the stale bitmaps from base, and with --drop-inconsistent the in-use bitmaps it drops from base
// and top, in the run's qemu-storage-daemon (each volume opened read-write for it and closed again), or by qemu-img when
// the daemon is not installed; then reads the bitmap directories from disk: none of those may be left, none may be
// in-use (a bitmap qemu failed to write back stays in-use). Top is written only once its backup is whole and named in
// the journal: a crash while its bitmaps are removed can leave its others in-use, and the repair rebuilds them from it.
import { crashDuring } from '../../../engine/crash-point.js';
import type { Step } from '../../../engine/step.js';
import { VolmergeError } from '../../../errors.js';
import { readDiskBitmaps } from '../../../qemu/qcow2-bitmaps.js';
import { removeBitmaps } from '../../../qemu/remove-bitmaps.js';
import { bitmapsOf, type BitmapInfo, type ImageInfo } from '../../../qemu/types.js';
import { assertNoInUseBitmaps } from '../../../merge/verify.js';
import { daemonOf, inspected, type MergeContext } from './context.js';
import { backUpTop } from './top-backup.js';

/** The names among wanted that an image holds. */
function held(bitmaps: readonly BitmapInfo[], wanted: readonly string[]): string[] {
  return bitmaps.map((b) => b.name).filter((name) => wanted.includes(name));
}

/** What the step removes: base's stale bitmaps and the dropped ones it holds; the dropped ones top holds. */
function removals(context: MergeContext): { base: string[]; top: string[] } {
  const { prune, inconsistent = [] } = context.plan.bitmaps;
  if (inconsistent.length === 0 || !context.inspection) return { base: prune, top: [] };
  const { topInfo, baseInfo }: { topInfo: ImageInfo; baseInfo: ImageInfo } = context.inspection;
  return { base: [...new Set([...prune, ...held(bitmapsOf(baseInfo), inconsistent)])], top: held(bitmapsOf(topInfo), inconsistent) };
}

/** Removes names from one volume and reads its bitmap directory back: none of them left, none in-use. */
async function removeAndCheck(context: MergeContext, role: 'base' | 'top', names: readonly string[], crashName: string, after: string): Promise<void> {
  const volume = inspected(context)[role];
  const daemon = await daemonOf(context);
  await removeBitmaps(volume.realPath, volume.driver, names, (removed, total) => crashDuring(crashName, (100 * removed) / total), daemon);
  const bitmaps = await readDiskBitmaps(volume.realPath, role);
  assertNoInUseBitmaps(bitmaps, role, volume.path, after);
  const left = held(bitmaps, names);
  if (left.length > 0) throw new VolmergeError('verify-failed', `${role} ${volume.path}: bitmaps ${left.join(', ')} are still there after removal`);
}

/** The prune step. */
export const pruneStep: Step<MergeContext> = {
  name: 'prune',
  writesBitmaps: true,
  journaling: (context) => {
    const { base, top } = removals(context);
    return base.length + top.length === 0 ? 'idle' : 'durable';
  },
  async run(context) {
    const names = removals(context);
    if (names.base.length > 0) await removeAndCheck(context, 'base', names.base, 'prune', 'pruning stale bitmaps');
    if (names.top.length > 0) {
      // Top's backup, durable in the journal, before top is written.
      await backUpTop(context);
      await removeAndCheck(context, 'top', names.top, 'drop', 'dropping its inconsistent bitmaps');
    }
    return { removed: names.base, ...(names.top.length > 0 ? { droppedFromTop: names.top } : {}) };
  },
};
