// Step commit: qemu-img commit of top into base (top is kept and still reads the same), then a re-read of the chain
// that proves no bitmap was lost behind qemu-img's exit code; the bitmaps step reuses that re-read.
import { crashDuring } from '../../../engine/crash-point.js';
import type { Step } from '../../../engine/step.js';
import { explainCommitFailure } from '../../../merge/no-space.js';
import { rereadChain } from '../../../merge/reread.js';
import { commit } from '../../../qemu/mutations.js';
import { inspected, type MergeContext } from './context.js';

/** The commit step. */
export const commitStep: Step<MergeContext> = {
  name: 'commit',
  writesBitmaps: true,
  journaling: () => 'durable',
  async run(context) {
    const inspection = inspected(context);
    const { top, base } = inspection;
    const { rateLimit } = context.request;
    await commit(top.realPath, base.realPath, {
      onProgress: (percent) => {
        crashDuring('commit', percent);
        context.onProgress?.(percent);
      },
      ...(context.signal ? { signal: context.signal } : {}),
      ...(rateLimit ? { rateLimit } : {}),
    }).catch((error: unknown) => {
      throw explainCommitFailure(error, base, context.plan);
    });
    context.baseAfterCommit = (await rereadChain(inspection, 'the commit')).base;
    return {};
  },
};
