// Finds the unfinished job of a chain in the state folder, and lets a new run take it over (same or new job id).
import { lstat, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { syncDir } from './atomic-file.js';
import { firstUnfinishedStep, isUnfinished, jobsDir, JournalWriter, now, scanJournals, writeJournal, type Journal } from './journal.js';

/** An unfinished journal and the folder it is in. */
export interface UnfinishedJob {
  folder: string;
  journal: Journal;
}

/** The unfinished job whose base has this identity, or undefined; two of them is an error that needs a person. */
export async function findUnfinishedJob(stateDir: string, baseIdentity: string): Promise<UnfinishedJob | undefined> {
  const found: UnfinishedJob[] = [];
  for (const entry of await scanJournals(stateDir)) {
    if ('journal' in entry && entry.journal.volumes.base.identity === baseIdentity && isUnfinished(entry.journal)) {
      found.push({ folder: entry.folder, journal: entry.journal });
    }
  }
  if (found.length > 1) {
    throw new VolmergeError(
      'needs-attention',
      `base ${found[0]?.journal.request.base}: jobs ${found.map((f) => f.folder).join(', ')} in ${jobsDir(stateDir)} all claim it; keep the right one and move the others away`,
    );
  }
  return found[0];
}

/** Where an unfinished job stands, for messages: "step commit" or "the end". */
export function resumePoint(journal: Journal): string {
  const step = firstUnfinishedStep(journal);
  return step ? `step ${step}` : 'its last bookkeeping';
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Takes over an unfinished job's journal for a run of job jobId: the journal is rewritten in its folder under the
 * new id (state running, one more attempt), then the folder is renamed to the new id. A crash between the two leaves a
 * journal that names its old folder in resumedFrom, which readers accept and the next takeover completes.
 */
export async function takeOver(stateDir: string, unfinished: UnfinishedJob, jobId: string): Promise<JournalWriter> {
  const { folder } = unfinished;
  const next = structuredClone(unfinished.journal);
  next.jobId = jobId;
  next.state = 'running';
  next.attempt += 1;
  next.pid = process.pid;
  next.updatedAt = now();
  delete next.error;
  if (folder !== jobId) {
    if (await exists(join(jobsDir(stateDir), jobId))) {
      throw new VolmergeError('job-exists', `job ${jobId} cannot take over job ${folder}: ${join(jobsDir(stateDir), jobId)} exists already; use another job id`);
    }
    next.resumedFrom = folder;
  }
  await writeJournal(stateDir, next, folder);
  if (folder !== jobId) {
    await rename(join(jobsDir(stateDir), folder), join(jobsDir(stateDir), jobId));
    await syncDir(jobsDir(stateDir));
  }
  return new JournalWriter(stateDir, next);
}
