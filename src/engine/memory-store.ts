// A job store in memory, for tests of the executor and of resuming: what a crash would leave is what was written.
import { VolmergeError } from '../errors.js';
import { checkJournal, type Journal } from './journal.js';
import { readEachKey, type JobStore, type StoredJournal } from './store.js';

/** Journals kept in a map, each write schema-checked and copied (a later change of the caller's object is not seen). */
export class MemoryJobStore implements JobStore {
  readonly kind = 'memory' as const;
  /** How many journal writes were made (each one is a durable write in a real store). */
  writes = 0;
  private readonly journals = new Map<string, Journal>();

  constructor(readonly stateDir = '/nonexistent/volmerge-memory-store') {}

  describe(): string {
    return 'the in-memory job store';
  }

  locationOf(key: string): string {
    return `memory:${key}`;
  }

  keyFor(jobId: string): string {
    return jobId;
  }

  async keys(): Promise<string[]> {
    return [...this.journals.keys()].sort();
  }

  async read(key: string): Promise<StoredJournal | undefined> {
    const journal = this.journals.get(key);
    return journal ? { key, where: this.locationOf(key), journal: structuredClone(journal) } : undefined;
  }

  async list(): Promise<StoredJournal[]> {
    return readEachKey(this);
  }

  async write(journal: Journal, key: string): Promise<void> {
    checkJournal(journal, this.locationOf(key));
    this.journals.set(key, structuredClone(journal));
    this.writes += 1;
  }

  async takeOver(next: Journal, from: string): Promise<string> {
    const to = next.jobId;
    if (from !== to && this.journals.has(to)) throw new VolmergeError('job-exists', `job ${to} cannot take over job ${from}: it exists already`);
    await this.write(next, from);
    if (from !== to) {
      this.journals.set(to, this.journals.get(from) as Journal);
      this.journals.delete(from);
    }
    return to;
  }

  backupDir(key: string): string {
    return `${this.stateDir}/jobs/${key}`;
  }

  async saveBackup(): Promise<void> {}

  async loadBackup(): Promise<void> {}

  async remove(key: string): Promise<void> {
    this.journals.delete(key);
  }

  async close(): Promise<void> {}
}
