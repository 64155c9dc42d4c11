// Finds the unfinished job of a chain in the state folder, and lets a new run take it over (same or new job id).
import { VolmergeError } from '../errors.js';
import { toJobStore, type JobStore } from './job-store.js';
import { firstUnfinishedStep, isUnfinished, JournalWriter, now, type Journal } from './journal.js';

/** An unfinished journal and the folder it is in. */
export interface UnfinishedJob {
  folder: string;
  journal: Journal;
}

/** The unfinished job whose base has this identity, or undefined; two of them is an error that needs a person. */
export async function findUnfinishedJob(where: JobStore | string, baseIdentity: string): Promise<UnfinishedJob | undefined> {
  const store = toJobStore(where);
  const found: UnfinishedJob[] = [];
  for (const entry of await store.scan(baseIdentity)) {
    if ('journal' in entry && entry.journal.volumes.base.identity === baseIdentity && isUnfinished(entry.journal)) {
      found.push({ folder: entry.folder, journal: entry.journal });
    }
  }
  if (found.length > 1) {
    throw new VolmergeError(
      'needs-attention',
      `base ${found[0]?.journal.request.base}: jobs ${found.map((f) => f.folder).join(', ')} in ${store.describe()} all claim it; keep the right one and move the others away`,
    );
  }
  return found[0];
}

/** Where an unfinished job stands, for messages: "step commit" or "the end". */
export function resumePoint(journal: Journal): string {
  const step = firstUnfinishedStep(journal);
  return step ? `step ${step}` : 'its last bookkeeping';
}

/**
 * Takes over an unfinished job's journal for a run of job jobId: the journal is rewritten under the new id (state
 * running, one more attempt), then the store moves it to the new id's key (folder or LV renamed). A crash between the
 * two leaves a journal that names its old key in resumedFrom, which readers accept and the next takeover completes.
 */
export async function takeOver(where: JobStore | string, unfinished: UnfinishedJob, jobId: string): Promise<JournalWriter> {
  const store = toJobStore(where);
  const { folder } = unfinished;
  const next = structuredClone(unfinished.journal);
  next.jobId = jobId;
  next.state = 'running';
  next.attempt += 1;
  next.pid = process.pid;
  next.updatedAt = now();
  delete next.error;
  if (folder !== store.keyFor(jobId)) {
    // The job id whose key the state sits under now: the journal's own, or the one it was caught taking over from.
    const old = unfinished.journal;
    next.resumedFrom = store.keyFor(old.jobId) === folder || !old.resumedFrom ? old.jobId : old.resumedFrom;
  }
  const key = await store.takeOver(next, folder);
  return new JournalWriter(store, next, key);
}
