// Step verify: base's bitmaps exactly as planned (read from its bitmap directory on disk, none in-use), top's none
// in-use, qemu-img check clean (it opens base, loads its bitmaps and counts every cluster), and no more room used than
// planned (see merge/verify-base.ts). It only reads: the reads run together.
import type { Step } from '../../../engine/step.js';
import { rereadChain } from '../../../merge/reread.js';
import { verifyBase, type BaseReread } from '../../../merge/verify-base.js';
import { assertNoInUseBitmaps } from '../../../merge/verify.js';
import { readDiskBitmaps } from '../../../qemu/qcow2-bitmaps.js';
import { inspected, type MergeContext } from './context.js';

/** Base's and top's bitmaps from disk, none in-use. */
async function rereadBitmaps(context: MergeContext): Promise<BaseReread> {
  const { top, base } = inspected(context);
  const [baseBitmaps, topBitmaps] = await Promise.all([readDiskBitmaps(base.realPath, 'base'), readDiskBitmaps(top.realPath, 'top')]);
  assertNoInUseBitmaps(baseBitmaps, 'base', base.path, 'copying bitmaps');
  assertNoInUseBitmaps(topBitmaps, 'top', top.path, 'copying bitmaps');
  return { baseBitmaps };
}

/** The verify step. */
export const verifyStep: Step<MergeContext> = {
  name: 'verify',
  journaling: () => 'quiet',
  async run(context) {
    const inspection = inspected(context);
    const reread = context.plan.baseFormat === 'raw' ? rereadChain(inspection, 'copying bitmaps') : rereadBitmaps(context);
    reread.catch(() => undefined);
    return verifyBase(reread, inspection, context.plan);
  },
};
