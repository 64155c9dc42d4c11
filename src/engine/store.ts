// Where a job's state lives (its journal and its bitmap backup): this host's state folder, a job LV of a shared VG,
// or memory (tests). Recovery, status and the search for unfinished jobs read jobs through this interface only.
import type { VolmergeError } from '../errors.js';
import type { Journal } from './journal.js';

/** A journal found in a store under key (the job's id, but mid-takeover the id it took over from), or why it cannot be read. */
export type StoredJournal = { key: string; where: string; journal: Journal } | { key: string; where: string; error: VolmergeError };

/** The state of jobs: written atomically, read back schema-checked, removed when a job no longer needs it. */
export interface JobStore {
  /** 'host': STATE_DIR/jobs on this host; 'shared-vg': one LV per job in a shared VG; 'memory': tests. */
  readonly kind: 'host' | 'shared-vg' | 'memory';
  /** This host's state folder (block-device marks live there, whatever the store). */
  readonly stateDir: string;
  /** Where the jobs are, for messages: a folder, or "LVs volmerge_job_* of VG vg0". */
  describe(): string;
  /** Where one job's state is, for messages. */
  locationOf(key: string): string;
  /** The key of a new job's state (its folder or LV name). */
  keyFor(jobId: string): string;
  /** The keys of the jobs kept here, without reading them (another host may hold a shared VG's job LV). */
  keys(): Promise<string[]>;
  /** Every job's journal, unreadable ones with their error. */
  list(): Promise<StoredJournal[]>;
  /** One job's journal, or undefined when there is none under key. */
  read(key: string): Promise<StoredJournal | undefined>;
  /** Writes a journal under key, atomically: a reader sees the old one or the new one. */
  write(journal: Journal, key: string): Promise<void>;
  /** Moves an unfinished job's state from key `from` to the key of next.jobId, next being written first; returns the new key. */
  takeOver(next: Journal, from: string): Promise<string>;
  /** A folder of this host where the job's bitmap backup images are made and read by qemu-img. */
  backupDir(key: string): string;
  /** Keeps the backup images of backupDir(key) in the store (nothing to do when they are already there). */
  saveBackup(key: string): Promise<void>;
  /** Makes the stored backup images readable in backupDir(key) again (after a crash, on another host). */
  loadBackup(key: string): Promise<void>;
  /** Deletes a job's state (journal and backup). */
  remove(key: string): Promise<void>;
  /** Ends this process's use of the store: what it activated is put back. Never throws. */
  close(): Promise<void>;
}

/** Every journal a store holds, read one key after the other (unreadable ones with their error): what list() returns. */
export async function readEachKey(store: Pick<JobStore, 'keys' | 'read'>): Promise<StoredJournal[]> {
  const found: StoredJournal[] = [];
  for (const key of await store.keys()) {
    const entry = await store.read(key);
    if (entry) found.push(entry);
  }
  return found;
}
