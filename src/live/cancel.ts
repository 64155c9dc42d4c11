// Abort of a live merge: block-job-cancel, then wait until qemu has concluded the job. A job that is already ready
// completes WITHOUT a pivot and emits BLOCK_JOB_COMPLETED (not CANCELLED), so the wait is on the job's status, never
// on one event. The chain is then as it was: base's bitmaps that the job had stopped record again, and base is
// read-only again.
import { VolmergeError } from '../errors.js';
import { QmpCommandError, type QmpClient } from '../qemu/qmp-client.js';
import { enableAgain } from './bitmap-steps.js';
import type { LiveChain } from './chain.js';
import { findJob, waitJob } from './job.js';
import { mergedInVm } from './pivot.js';
import { reopenBase } from './reopen.js';

/** Options of cancel. */
export interface CancelOptions {
  signal?: AbortSignal;
  /** Base bitmaps to enable again: the plan's `disable` list (those that recorded before the job). */
  reenable?: readonly string[];
}

/**
 * Asks qemu to cancel the job. qemu refuses to cancel a paused job (paused by a user, or by ENOSPC on base) unless
 * forced; forcing it ends it at once, and a forced ready job is abandoned without its final copy: no pivot either way.
 */
async function requestCancel(client: QmpClient, jobId: string): Promise<void> {
  try {
    await client.call('block-job-cancel', { device: jobId });
  } catch (error) {
    if (!(error instanceof QmpCommandError) || !/paused/.test(error.desc)) throw error;
    await client.call('block-job-cancel', { device: jobId, force: true });
  }
}

/**
 * Cancels the job and leaves the chain as it was; 'absent' when qemu had no such job (nothing to do). Throws
 * 'mid-merge' when the merge had already pivoted: then it is done, not cancelled.
 */
export async function cancel(client: QmpClient, chain: LiveChain, jobId: string, options: CancelOptions = {}): Promise<'cancelled' | 'absent'> {
  const job = await findJob(client, jobId);
  if (job && job.status !== 'concluded') {
    await requestCancel(client, jobId);
    await waitJob(client, jobId, (state) => state.status === 'concluded', { what: 'the cancel', ...(options.signal ? { signal: options.signal } : {}) });
  }
  if (job) await client.call('job-dismiss', { id: jobId });
  if (await mergedInVm(client, chain)) {
    throw new VolmergeError('mid-merge', `job ${jobId}: ${chain.top.path} was already merged into ${chain.base.path} (the pivot had happened); nothing to cancel`);
  }
  await enableAgain(client, chain, options.reenable ?? []);
  // qemu 7.2 leaves base read-write after a cancelled active commit; read-only, it stores base's bitmaps and unlocks it.
  await reopenBase(client, chain, true);
  return job ? 'cancelled' : 'absent';
}
