// Waits for a commit through libvirt: until an active commit's copy is done (ready to pivot), or an internal commit
// has ended (libvirt finishes it by itself: bitmaps carried, the layer above top backed by base). The live XML and the
// job's raw info are read again each time; an event, or a second at the latest, wakes the next look.
import { VolmergeError } from '../errors.js';
import type { DomainEvents } from './events.js';
import { readCommitState, settledState, type CommitRecord, type CommitState } from './job-state.js';
import { patiently } from './patience.js';
import type { DomainRef } from './virsh.js';

/** How often the state is read when no event comes. */
const POLL_MS = 1000;

/** Options of waitCopied. */
export interface WaitOptions {
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
}

/** The error for a commit that ended without merging (cancelled or failed: libvirt's log and the domain's say which). */
export function endedWithoutMerge(record: CommitRecord, domain: string): VolmergeError {
  return new VolmergeError(
    'qemu-failed',
    `domain ${domain}: the commit of ${record.topSource} into ${record.baseSource} ended without merging (cancelled, or failed: see libvirt's log); the chain is as it was, and merging again starts it over`,
  );
}

/** Waits until the copy is done: 'ready' (active, pivot next) or 'merged' (internal, or a pivot that happened already). */
export async function waitCopied(ref: DomainRef, record: CommitRecord, events: DomainEvents, options: WaitOptions = {}): Promise<'ready' | 'merged'> {
  for (;;) {
    if (options.signal?.aborted) throw new VolmergeError('aborted', `the wait for the commit of ${record.topSource} was aborted`);
    const state: CommitState = await settledState(ref, record, () => patiently(() => readCommitState(ref, record), options.signal));
    if (state.merged) {
      options.onProgress?.(100);
      return 'merged';
    }
    if (!state.job) throw endedWithoutMerge(record, ref.domain);
    options.onProgress?.(state.percent);
    if (state.ready) return 'ready';
    await events.wake(POLL_MS, options.signal);
  }
}
