// The work of one SDM.merge job: check base's generation, run the merge through runMergeJob, then increment the generation.
import { VolmergeError, asVolmergeError } from '../errors.js';
import { runMergeJob } from '../jobs/merge-job.js';
import type { JobWork } from '../jobs/registry-types.js';
import { assertGeneration, bumpGeneration, readGeneration } from '../storage/generation.js';
import type { ResolvedSubchain } from './address.js';

/** What a merge job needs to know. */
export interface MergeWorkRequest {
  jobId: string;
  stateDir: string;
  chain: ResolvedSubchain;
  /** The generation base must be at (SDM.merge's base_generation); when absent, whatever it is when the job starts. */
  baseGeneration?: number;
  /** Commit rate limit in bytes per second: test-only (VOLMERGE_TEST_COMMIT_RATE). */
  commitRateLimit?: number;
}

/** The job body for a merge. */
export function mergeWork(request: MergeWorkRequest): JobWork {
  return async ({ signal, progress, step }) => {
    const { chain } = request;
    const expected = request.baseGeneration ?? (await readGeneration(chain.generation));
    // Checked again here: the generation may have moved while the job was pending.
    if (request.baseGeneration !== undefined) await assertGeneration(chain.generation, request.baseGeneration);
    await runMergeJob({
      jobId: request.jobId,
      stateDir: request.stateDir,
      top: chain.top,
      base: chain.base,
      signal,
      onProgress: progress,
      onStep: step,
      ...(request.commitRateLimit ? { rateLimit: request.commitRateLimit } : {}),
    });
    try {
      await bumpGeneration(chain.generation, expected);
    } catch (thrown) {
      const error = asVolmergeError(thrown);
      throw new VolmergeError(error.code, `base ${chain.base} was merged, but its generation was not incremented: ${error.message}`);
    }
  };
}
