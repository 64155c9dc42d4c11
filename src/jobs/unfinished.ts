// Finds the unfinished job of a chain in a job store, and lets a new run take it over (same or new job id).
import { JournalWriter } from '../engine/journal-writer.js';
import { firstUnfinishedStep, isUnfinished, now, type Journal } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { shapeOfJournal } from '../steps/shapes.js';
import type { Volume } from '../storage/volume.js';
import { concernsBase, journalBaseSameness, probeJournalBase, staleJob, staleText, type StaleJob } from './stale.js';

/** An unfinished journal and the key it is under. */
export interface UnfinishedJob {
  key: string;
  journal: Journal;
}

/** What a store holds of one base: its unfinished journals (one, normally) and the stale ones that named its path or its device and inode. */
export interface JournalsOfBase {
  unfinished: UnfinishedJob[];
  stale: StaleJob[];
}

/**
 * Sorts the unfinished journals of a store for a base: those whose base is this volume (by identity, see
 * same-volume.ts), and those that concern it (its path, its device and inode) but are stale. A weak record of the
 * same inode at another path is looked at where it was made: still there, it is this volume under another name.
 */
export async function journalsOfBase(store: JobStore, base: Volume): Promise<JournalsOfBase> {
  const sorted: JournalsOfBase = { unfinished: [], stale: [] };
  for (const entry of await store.list()) {
    if (!('journal' in entry) || !isUnfinished(entry.journal, shapeOfJournal(entry.journal))) continue;
    const { journal } = entry;
    const sameness = journalBaseSameness(journal, base);
    if (sameness.verdict === 'same') {
      if (sameness.note) log.info(`job ${journal.jobId}: base ${base.path}: ${sameness.note}`);
      sorted.unfinished.push({ key: entry.key, journal });
      continue;
    }
    if (!concernsBase(journal, base)) continue;
    const probe = await probeJournalBase(journal);
    if (probe.state === 'gone') sorted.stale.push(staleJob(store, entry.key, journal, staleText(journal, probe)));
    else if (sameness.verdict === 'unsure' && probe.state === 'present') sorted.unfinished.push({ key: entry.key, journal });
    else if (sameness.verdict === 'unsure' && probe.state === 'unknown') {
      throw new VolmergeError(
        'needs-attention',
        `base ${base.path}: job ${journal.jobId} (${store.locationOf(entry.key)}) names ${journal.volumes.base.path}, which cannot be looked at (${probe.reason}) ` +
          `nor told apart from this base (${sameness.reason}); try again once it can be read`,
      );
    }
  }
  return sorted;
}

/** The unfinished job whose base is this volume, or undefined; stale journals of its path or inode are named (never used); two unfinished is an error that needs a person. */
export async function findUnfinishedJob(store: JobStore, base: Volume): Promise<UnfinishedJob | undefined> {
  const { unfinished: found, stale } = await journalsOfBase(store, base);
  for (const job of stale) {
    log.warn(`base ${base.path}: job ${job.jobId} (${job.where}) is stale and was not used: ${job.reason}; clear it: ${job.clear}`);
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
