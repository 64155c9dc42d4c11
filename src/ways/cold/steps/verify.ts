// Step verify: base re-read with its bitmaps exactly as planned, qemu-img check clean, and no more room used than
// planned (see merge/verify-base.ts). It only reads.
import type { Step } from '../../../engine/step.js';
import { rereadChain } from '../../../merge/reread.js';
import { verifyBase } from '../../../merge/verify-base.js';
import { inspected, type MergeContext } from './context.js';

/** The verify step. */
export const verifyStep: Step<MergeContext> = {
  name: 'verify',
  journaling: () => 'quiet',
  async run(context) {
    const inspection = inspected(context);
    // Both only read base: the check runs alongside the re-read.
    const reread = rereadChain(inspection, 'copying bitmaps');
    reread.catch(() => undefined);
    return verifyBase(reread, inspection, context.plan);
  },
};
