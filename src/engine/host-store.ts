// This host's job store: STATE_DIR/jobs/JOB_ID/ holds journal.json (written atomically, schema-checked when read) and
// the bitmap backup images.
import { lstat, readdir, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { mkdirDurable, removeDurable, syncDir, writeFileAtomic } from '../os/atomic-file.js';
import { deleteBitmapBackup } from './backup-images.js';
import { assertJobId, checkJournal, isJobId, parseJournal, type Journal } from './journal.js';
import { readEachKey, type JobStore, type StoredJournal } from './store.js';

/** The journal's file name inside its job folder. */
export const JOURNAL_FILE = 'journal.json';

/** The folder that holds every job's folder. */
export function jobsDir(stateDir: string): string {
  return join(stateDir, 'jobs');
}

/** The folder of one job: its journal and its bitmap backups. */
export function jobDir(stateDir: string, jobId: string): string {
  assertJobId(jobId);
  return join(jobsDir(stateDir), jobId);
}

/** The journal file of one job. */
export function journalPath(stateDir: string, jobId: string): string {
  return join(jobDir(stateDir, jobId), JOURNAL_FILE);
}

/** Reads and checks one journal file; an unreadable, unparsable, invalid or misplaced one is 'needs-attention' naming it. */
export async function readJournal(path: string): Promise<Journal> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new VolmergeError('needs-attention', `journal ${path} cannot be read (${(error as Error).message}); the job needs attention`);
  }
  const journal = parseJournal(text, path);
  const folder = basename(dirname(path));
  // A job that took over another's journal is written into the old folder first, then the folder is renamed.
  if (folder !== journal.jobId && folder !== journal.resumedFrom) {
    throw new VolmergeError('needs-attention', `journal ${path} names job ${journal.jobId}, not the folder's ${folder}; the job needs attention`);
  }
  return journal;
}

/** Validates and writes a journal atomically (temp file, fsync, rename, fsync the folder), into its job's folder or the one given. */
export async function writeJournal(stateDir: string, journal: Journal, folder = journal.jobId): Promise<void> {
  const path = journalPath(stateDir, folder);
  checkJournal(journal, path);
  await mkdirDurable(jobDir(stateDir, folder));
  await writeFileAtomic(path, `${JSON.stringify(journal, null, 2)}\n`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Reads every job's journal under the state folder; unreadable ones are listed with their error, not thrown. */
export async function scanJournals(stateDir: string): Promise<(StoredJournal & { folder: string; path: string })[]> {
  return (await new HostJobStore(stateDir).list()).map((entry) => ({ ...entry, folder: entry.key, path: entry.where }));
}

/** The host's state folder as a job store. */
export class HostJobStore implements JobStore {
  readonly kind = 'host' as const;
  constructor(readonly stateDir: string) {}

  describe(): string {
    return jobsDir(this.stateDir);
  }

  locationOf(key: string): string {
    return jobDir(this.stateDir, key);
  }

  keyFor(jobId: string): string {
    return jobId;
  }

  async keys(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(jobsDir(this.stateDir));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new VolmergeError('needs-attention', `cannot list the jobs in ${jobsDir(this.stateDir)}: ${(error as Error).message}`);
    }
    const keys: string[] = [];
    // A folder without a journal is a job that never got to write one (or one being deleted): nothing to recover.
    for (const name of names.sort()) if (isJobId(name) && (await exists(join(jobsDir(this.stateDir), name, JOURNAL_FILE)))) keys.push(name);
    return keys;
  }

  async read(key: string): Promise<StoredJournal | undefined> {
    const path = journalPath(this.stateDir, key);
    if (!(await exists(path))) return undefined;
    try {
      return { key, where: path, journal: await readJournal(path) };
    } catch (error) {
      if (error instanceof VolmergeError) return { key, where: path, error };
      throw error;
    }
  }

  async list(): Promise<StoredJournal[]> {
    return readEachKey(this);
  }

  async write(journal: Journal, key: string): Promise<void> {
    await writeJournal(this.stateDir, journal, key);
  }

  /** The journal is rewritten in the old folder, then the folder is renamed: a crash between leaves a journal naming its folder in resumedFrom. */
  async takeOver(next: Journal, from: string): Promise<string> {
    const to = next.jobId;
    if (from !== to && (await exists(join(jobsDir(this.stateDir), to)))) {
      throw new VolmergeError('job-exists', `job ${to} cannot take over job ${from}: ${join(jobsDir(this.stateDir), to)} exists already; use another job id`);
    }
    await writeJournal(this.stateDir, next, from);
    if (from !== to) {
      await rename(join(jobsDir(this.stateDir), from), join(jobsDir(this.stateDir), to));
      await syncDir(jobsDir(this.stateDir));
    }
    return to;
  }

  backupDir(key: string): string {
    return jobDir(this.stateDir, key);
  }

  async saveBackup(): Promise<void> {}

  async loadBackup(): Promise<void> {}

  async remove(key: string): Promise<void> {
    const dir = jobDir(this.stateDir, key);
    await deleteBitmapBackup(dir);
    await removeDurable(dir);
  }

  async close(): Promise<void> {}
}
