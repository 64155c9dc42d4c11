// The end of a commit through libvirt: the pivot of an active commit (libvirt carries top's bitmaps into base in the
// same breath), or the check that an internal commit has ended merged; and the abort of a commit before its end, which
// leaves the chain as it was. Each probes first, so that a run after a crash finishes what is left.
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { abortJob, pivotJob } from './block-job.js';
import { endedWithoutMerge, waitCopied } from './commit-wait.js';
import type { DomainEvents } from './events.js';
import { readCommitState, settledState, type CommitRecord } from './job-state.js';
import { patiently } from './patience.js';
import type { DomainRef } from './virsh.js';

/** Pivots an active commit once ready, or checks that an internal one ended merged; safe to run again. */
export async function finishCommit(ref: DomainRef, record: CommitRecord, events: DomainEvents, options: { signal?: AbortSignal } = {}): Promise<void> {
  for (let tries = 0; ; tries += 1) {
    const state = await settledState(ref, record, () => patiently(() => readCommitState(ref, record)));
    if (state.merged) return;
    if (!state.job) throw endedWithoutMerge(record, ref.domain);
    if (!record.active || !state.ready) {
      await waitCopied(ref, record, events, options);
      continue;
    }
    try {
      await pivotJob(ref, record.target);
    } catch (error) {
      // Not ready after all (the guest wrote since), or libvirtd restarting: look again, a few times.
      if (tries >= 20) throw error;
      log.info(`pivot of ${record.target}: ${(error as Error).message}; looking again`);
      await events.wake(1000);
    }
  }
}

/**
 * Aborts the disk's commit before its end and checks the chain is as it was. Resolves 'merged' when the commit had
 * ended merged already (an internal one finishes by itself): then the merge is done, not cancelled.
 */
export async function cancelCommit(ref: DomainRef, record: CommitRecord): Promise<'cancelled' | 'absent' | 'merged'> {
  const before = await patiently(() => readCommitState(ref, record));
  if (before.merged) return 'merged';
  if (!before.job) return 'absent';
  await abortJob(ref, record.target).catch((error: unknown) => {
    // The job may have ended between the look and the abort.
    log.info(`abort of ${record.target}'s job: ${(error as Error).message}`);
  });
  const after = await settledState(ref, record, () => patiently(() => readCommitState(ref, record)));
  if (after.merged) return 'merged';
  if (after.job) throw new VolmergeError('qemu-failed', `domain ${ref.domain}: the block job of ${record.target} is still there after virsh blockjob --abort`);
  return 'cancelled';
}
