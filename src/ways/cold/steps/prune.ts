// Step prune: removes the stale bitmaps from base (one qemu-storage-daemon session for several), and with
// --drop-inconsistent the in-use bitmaps it drops from base and top; then re-reads them: none of those may be left,
// none may be in-use. Top is written only once its backup (made meanwhile) is whole: a crash while its bitmaps are
// removed can leave its others in-use, and the repair rebuilds them from that backup.
import { crashDuring } from '../../../engine/crash-point.js';
import type { Step } from '../../../engine/step.js';
import { VolmergeError } from '../../../errors.js';
import { readInfo } from '../../../qemu/queries.js';
import { removeBitmaps } from '../../../qemu/remove-bitmaps.js';
import { bitmapsOf, type ImageInfo } from '../../../qemu/types.js';
import { assertNoInUseBitmaps } from '../../../merge/verify.js';
import { finishTopBackup, inspected, stopDaemon, type MergeContext } from './context.js';

/** The names among wanted that an image holds. */
function held(info: ImageInfo, wanted: readonly string[]): string[] {
  return bitmapsOf(info)
    .map((b) => b.name)
    .filter((name) => wanted.includes(name));
}

/** What the step removes: base's stale bitmaps and the dropped ones it holds; the dropped ones top holds. */
function removals(context: MergeContext): { base: string[]; top: string[] } {
  const { prune, inconsistent = [] } = context.plan.bitmaps;
  if (inconsistent.length === 0 || !context.inspection) return { base: prune, top: [] };
  const { topInfo, baseInfo } = context.inspection;
  return { base: [...new Set([...prune, ...held(baseInfo, inconsistent)])], top: held(topInfo, inconsistent) };
}

/** Throws 'verify-failed' when an image still holds a bitmap it should have lost. */
function assertGone(info: ImageInfo, names: readonly string[], role: string, path: string): void {
  const left = held(info, names);
  if (left.length > 0) throw new VolmergeError('verify-failed', `${role} ${path}: bitmaps ${left.join(', ')} are still there after removal`);
}

/** The prune step. */
export const pruneStep: Step<MergeContext> = {
  name: 'prune',
  writesBitmaps: true,
  journaling: (context) => {
    const { base, top } = removals(context);
    return base.length + top.length === 0 ? 'quiet' : 'durable';
  },
  async run(context) {
    const { base, top } = inspected(context);
    const names = removals(context);
    const daemon = context.pruneDaemon;
    delete context.pruneDaemon;
    try {
      await removeBitmaps(base.realPath, base.driver, names.base, (removed, total) => crashDuring('prune', (100 * removed) / total), daemon);
    } finally {
      // Not used when there was nothing to remove: it has nothing open and just quits.
      await stopDaemon(daemon);
    }
    if (names.base.length > 0) {
      const after = await readInfo(base.realPath);
      assertNoInUseBitmaps(after, 'base', base.path, 'pruning stale bitmaps');
      assertGone(after, names.base, 'base', base.path);
    }
    // Top's backup, made meanwhile, is whole before top is written and before this step is recorded as done.
    await finishTopBackup(context);
    if (names.top.length > 0) {
      await removeBitmaps(top.realPath, top.driver, names.top, (removed, total) => crashDuring('drop', (100 * removed) / total));
      const after = await readInfo(top.realPath);
      assertNoInUseBitmaps(after, 'top', top.path, 'dropping its inconsistent bitmaps');
      assertGone(after, names.top, 'top', top.path);
    }
    return { removed: names.base, ...(names.top.length > 0 ? { droppedFromTop: names.top } : {}) };
  },
};
