// Finds the unfinished job of a chain in a job store, and lets a new run take it over (same or new job id).
import { JournalWriter } from '../engine/journal-writer.js';
import { firstUnfinishedStep, isUnfinished, now, type Journal } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import { VolmergeError } from '../errors.js';
import { shapeOfJournal } from '../steps/shapes.js';

/** An unfinished journal and the key it is under. */
export interface UnfinishedJob {
  key: string;
  journal: Journal;
}

/** The unfinished job whose base has this identity, or undefined; two of them is an error that needs a person. */
export async function findUnfinishedJob(store: JobStore, baseIdentity: string): Promise<UnfinishedJob | undefined> {
  const found: UnfinishedJob[] = [];
  for (const entry of await store.list()) {
    if ('journal' in entry && entry.journal.volumes.base.identity === baseIdentity && isUnfinished(entry.journal, shapeOfJournal(entry.journal))) {
      found.push({ key: entry.key, journal: entry.journal });
    }
  }
  if (found.length > 1) {
    throw new VolmergeError(
      'needs-attention',
      `base ${found[0]?.journal.request.base}: jobs ${found.map((f) => f.key).join(', ')} in ${store.describe()} all claim it; keep the right one and move the others away`,
    );
  }
  return found[0];
}

/** The first step an unfinished job has not done ('end': only bookkeeping is left). */
export function nextStep(journal: Journal): string {
  return firstUnfinishedStep(journal, shapeOfJournal(journal)) ?? 'end';
}

/** Where an unfinished job stands, for messages: "step commit" or "its last bookkeeping". */
export function resumePoint(journal: Journal): string {
  const step = firstUnfinishedStep(journal, shapeOfJournal(journal));
  return step ? `step ${step}` : 'its last bookkeeping';
}

/**
 * Takes over an unfinished job's journal for a run of job jobId: the journal is rewritten under the new id (state
 * running, one more attempt), then the store moves it to the new id's key (folder or LV renamed). A crash between the
 * two leaves a journal that names its old key in resumedFrom, which readers accept and the next takeover completes.
 */
export async function takeOver(store: JobStore, unfinished: UnfinishedJob, jobId: string): Promise<JournalWriter> {
  const { key } = unfinished;
  const next = structuredClone(unfinished.journal);
  next.jobId = jobId;
  next.state = 'running';
  next.attempt += 1;
  next.pid = process.pid;
  next.updatedAt = now();
  delete next.error;
  if (key !== store.keyFor(jobId)) {
    // The job id whose key the state sits under now: the journal's own, or the one it was caught taking over from.
    const old = unfinished.journal;
    next.resumedFrom = store.keyFor(old.jobId) === key || !old.resumedFrom ? old.jobId : old.resumedFrom;
  }
  const newKey = await store.takeOver(next, key);
  return new JournalWriter(store, next, newKey);
}
