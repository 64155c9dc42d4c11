// Step prune: removes the stale bitmaps from base in the run's qemu-storage-daemon (base opened read-write for it and
// closed again), or by qemu-img when the daemon is not installed; then reads base's bitmap directory from disk: none of
// them may be left, and none may be in-use (a bitmap qemu failed to write back stays in-use).
import { crashDuring } from '../engine/crash-point.js';
import type { Step } from '../engine/step.js';
import { VolmergeError } from '../errors.js';
import { readDiskBitmaps } from '../qemu/qcow2-bitmaps.js';
import { removeBitmaps } from '../qemu/remove-bitmaps.js';
import { assertNoInUseBitmaps } from '../merge/verify.js';
import { daemonOf, inspected, type MergeContext } from './context.js';

/** The prune step. */
export const pruneStep: Step<MergeContext> = {
  name: 'prune',
  writesBitmaps: true,
  journaling: (context) => (context.plan.bitmaps.prune.length === 0 ? 'quiet' : 'durable'),
  async run(context) {
    const { base } = inspected(context);
    const names = context.plan.bitmaps.prune;
    if (names.length === 0) return { removed: [] };
    const daemon = await daemonOf(context);
    await removeBitmaps(base.realPath, base.driver, names, (removed, total) => crashDuring('prune', (100 * removed) / total), daemon);
    const after = await readDiskBitmaps(base.realPath, 'base');
    assertNoInUseBitmaps(after, 'base', base.path, 'pruning stale bitmaps');
    const left = after.filter((b) => names.includes(b.name)).map((b) => b.name);
    if (left.length > 0) throw new VolmergeError('verify-failed', `base ${base.path}: bitmaps ${left.join(', ')} are still there after removal`);
    return { removed: names };
  },
};
