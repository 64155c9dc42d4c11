// Step prune: removes the stale bitmaps from base (one qemu-storage-daemon session for several), then re-reads base:
// none may be left, none may be in-use.
import { crashDuring } from '../engine/crash-point.js';
import type { Step } from '../engine/step.js';
import { VolmergeError } from '../errors.js';
import { readInfo } from '../qemu/queries.js';
import { removeBitmaps } from '../qemu/remove-bitmaps.js';
import { bitmapsOf } from '../qemu/types.js';
import { assertNoInUseBitmaps } from '../merge/verify.js';
import { finishTopBackup, inspected, stopDaemon, type MergeContext } from './context.js';

/** The prune step. */
export const pruneStep: Step<MergeContext> = {
  name: 'prune',
  writesBitmaps: true,
  journaling: (context) => (context.plan.bitmaps.prune.length === 0 ? 'quiet' : 'durable'),
  async run(context) {
    const { base } = inspected(context);
    const names = context.plan.bitmaps.prune;
    const daemon = context.pruneDaemon;
    delete context.pruneDaemon;
    try {
      await removeBitmaps(base.realPath, base.driver, names, (removed, total) => crashDuring('prune', (100 * removed) / total), daemon);
    } finally {
      // Not used when there was nothing to remove: it has nothing open and just quits.
      await stopDaemon(daemon);
    }
    if (names.length > 0) {
      const after = await readInfo(base.realPath);
      assertNoInUseBitmaps(after, 'base', base.path, 'pruning stale bitmaps');
      const left = bitmapsOf(after).filter((b) => names.includes(b.name)).map((b) => b.name);
      if (left.length > 0) throw new VolmergeError('verify-failed', `base ${base.path}: bitmaps ${left.join(', ')} are still there after removal`);
    }
    // Top's backup, made meanwhile, is whole before this step is recorded as done (the commit may need it).
    await finishTopBackup(context);
    return { removed: names };
  },
};
