// A journal that one run keeps up to date in its store: each change is written durably before the call returns.
import { HostJobStore } from './host-store.js';
import { now, type Journal } from './journal.js';
import type { Facts } from './step.js';
import type { JobStore } from './store.js';

/** The store a caller meant: a state folder path is this host's store. */
export function toJobStore(where: JobStore | string): JobStore {
  return typeof where === 'string' ? new HostJobStore(where) : where;
}

/** One run's journal and where it is written. */
export class JournalWriter {
  /** Where the journal is kept (a state folder given as a path is this host's store). */
  readonly store: JobStore;
  /** The job's key in the store (its folder or LV): from its id, except for a journal caught mid-takeover. */
  readonly key: string;

  constructor(
    store: JobStore | string,
    private current: Journal,
    key?: string,
  ) {
    this.store = toJobStore(store);
    this.key = key ?? this.store.keyFor(current.jobId);
  }

  /** This host's state folder. */
  get stateDir(): string {
    return this.store.stateDir;
  }

  /** The journal as last written (with staged changes). */
  get journal(): Journal {
    return this.current;
  }

  /** Applies a change, stamps updatedAt and writes the whole journal atomically. */
  async update(change: (journal: Journal) => void): Promise<void> {
    const next = structuredClone(this.current);
    change(next);
    next.updatedAt = now();
    await this.store.write(next, this.key);
    this.current = next;
  }

  /** Records that a step starts (before it acts). */
  async started(step: string): Promise<void> {
    await this.update((j) => {
      j.steps[step] = { status: 'started', startedAt: now() };
    });
  }

  /** Records that a step is done, with what it found. */
  async done(step: string, facts: Facts): Promise<void> {
    this.stageDone(step, facts);
    await this.update(() => undefined);
  }

  /** Records in memory that a started step is done: the next update() writes it (the next step's start, say). */
  stageDone(step: string, facts: Facts): void {
    this.stage((j) => {
      const record = j.steps[step];
      j.steps[step] = { status: 'done', startedAt: record?.startedAt ?? now(), endedAt: now(), facts };
    });
  }

  /** Applies a change in memory only: the next update() writes it along with its own. */
  stage(change: (journal: Journal) => void): void {
    const next = structuredClone(this.current);
    change(next);
    this.current = next;
  }

  /** Records a step as done in memory only: the next update() writes it (a quiet or repeatable step). */
  doneQuietly(step: string, facts: Facts): void {
    const at = now();
    this.stage((j) => {
      j.steps[step] = { status: 'done', startedAt: at, endedAt: at, facts };
    });
  }

  /** Forgets a step that was undone: the next run does it again. */
  async forget(step: string): Promise<void> {
    await this.update((j) => {
      delete j.steps[step];
    });
  }

  /** Whether a step is recorded as done. */
  isDone(step: string): boolean {
    return this.current.steps[step]?.status === 'done';
  }
}
