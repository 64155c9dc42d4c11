// The end of a live job whose VM is gone, the same for both live ways (QMP, libvirt): after its pivot top is stale and
// never merged again; mid-pivot the VM's disk may be either volume, which a person must check; before its pivot top
// still holds all of its data and the chain on disk still runs top -> base, so the job is closed as vm-gone and a cold
// merge finishes the chain.
import { JournalWriter } from '../engine/journal-writer.js';
import type { JobStore } from '../engine/store.js';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import type { MergeJobRequest } from './job-request.js';
import type { UnfinishedJob } from './unfinished.js';

/** How messages name what ran the chain: "VM" / "went away", or "domain" / "stopped"; gone: the closing message. */
export interface OrphanWords {
  holder: 'VM' | 'domain';
  went: string;
  gone: string;
}

/**
 * Closes a live job whose VM is known to be gone, so that a cold merge finishes the chain; refuses (throws) after or
 * during its pivot. Resolves true when the job's commit had started (base may hold part of top).
 */
export async function closeOrphan(request: MergeJobRequest, store: JobStore, unfinished: UnfinishedJob, words: OrphanWords): Promise<boolean> {
  const { journal, key } = unfinished;
  const { holder, went } = words;
  const pivot = journal.steps.pivot?.status;
  if (pivot === 'done') {
    await store.remove(key);
    throw new VolmergeError(
      'volume-retired',
      `top ${journal.request.top} was merged live into base ${request.base} (job ${journal.jobId}) before its ${holder} ${went}: base holds its data and ` +
        'perhaps newer writes, so top must not be merged again; remove top once nothing uses it',
    );
  }
  if (pivot !== undefined) {
    throw new VolmergeError(
      'needs-attention',
      `base ${request.base}: the live merge of ${journal.request.top} (job ${journal.jobId}) was pivoting when its ${holder} ${went}, so the ${holder}'s disk may be ` +
        `base already (then top is stale) or still top; check which volume the ${holder}'s configuration uses, then move ${store.locationOf(key)} away`,
    );
  }
  await new JournalWriter(store, journal, key).update((j) => {
    j.state = 'failed';
    j.error = { code: 'vm-gone', message: words.gone };
  });
  await store.remove(key);
  log.warn(`job ${journal.jobId}: ${words.gone}`);
  return journal.steps.commit !== undefined;
}
