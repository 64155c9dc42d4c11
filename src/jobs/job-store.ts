// Where a job's state lives (its journal and its bitmap backup): a folder of this host's state dir, or, for a chain on
// a shared VG, a small LV of that VG that any host can open. The job code talks to this interface only.
import { lstat, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { removeDurable, syncDir } from './atomic-file.js';
import { deleteBitmapBackup } from './bitmap-backup.js';
import { jobDir, jobsDir, scanJournals, writeJournal, type Journal, type ScannedJournal } from './journal.js';

/** The state of jobs: written atomically, read back schema-checked, removed when a job no longer needs it. */
export interface JobStore {
  /** 'host': STATE_DIR/jobs on this host; 'shared-vg': one LV per job in a shared VG. */
  readonly kind: 'host' | 'shared-vg';
  /** This host's state folder (block-device marks live there, whatever the store). */
  readonly stateDir: string;
  /** Where the jobs are, for messages: a folder, or "LVs volmerge_job_* of VG vg0". */
  describe(): string;
  /** Where one job's state is, for messages. */
  locationOf(key: string): string;
  /** The key of a new job's state (its folder or LV name). */
  keyFor(jobId: string): string;
  /** Writes a journal under key, atomically: a reader sees the old one or the new one. */
  write(journal: Journal, key: string): Promise<void>;
  /** Every job's journal (for a shared VG: those of this base identity only); unreadable ones listed with their error. */
  scan(baseIdentity?: string): Promise<ScannedJournal[]>;
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

/** The host's state folder: STATE_DIR/jobs/JOB_ID/ holds journal.json and the backup images. */
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

  async write(journal: Journal, key: string): Promise<void> {
    await writeJournal(this.stateDir, journal, key);
  }

  async scan(): Promise<ScannedJournal[]> {
    return scanJournals(this.stateDir);
  }

  /** The journal is rewritten in the old folder, then the folder is renamed: a crash between leaves a journal naming its folder in resumedFrom. */
  async takeOver(next: Journal, from: string): Promise<string> {
    const to = next.jobId;
    if (from !== to) {
      const target = join(jobsDir(this.stateDir), to);
      const taken = await lstat(target).then(
        () => true,
        () => false,
      );
      if (taken) throw new VolmergeError('job-exists', `job ${to} cannot take over job ${from}: ${target} exists already; use another job id`);
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

/** The store a caller meant: a state folder path is this host's store. */
export function toJobStore(where: JobStore | string): JobStore {
  return typeof where === 'string' ? new HostJobStore(where) : where;
}
