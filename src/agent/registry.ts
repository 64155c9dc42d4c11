// The agent's job table: jobs wait as pending, at most maxJobs run at once, and finished ones expire after a delay.
import { asVolmergeError, VolmergeError } from '../errors.js';
import { isFinished, type JobError, type JobRecord, type JobResult, type JobStatus, type NewJob } from './registry-types.js';

/** How the table behaves. */
export interface RegistryOptions {
  /** How many jobs run at once; the others wait as pending. */
  maxJobs: number;
  /** Finished jobs are forgotten this long after they end (Job.delete removes them sooner). */
  finishedTtlMs: number;
  /** Called after every change of a job's status (for the log). */
  onTransition?: (job: JobRecord) => void;
  /** The clock (tests replace it). */
  now?: () => number;
}

interface Entry {
  record: JobRecord;
  work: NewJob['work'];
  controller: AbortController;
  settled?: Promise<void>;
  expiry?: NodeJS.Timeout;
  /** Shown as pending but not queued: a recovered job that waits until its volumes can be probed (see hold). */
  held?: boolean;
}

/** The table of jobs with its queue; single-threaded, so each method sees and changes a consistent table. */
export class JobRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: string[] = [];
  private running = 0;
  private stopping = false;
  private readonly now: () => number;

  constructor(private readonly options: RegistryOptions) {
    if (!Number.isInteger(options.maxJobs) || options.maxJobs < 1) throw new Error(`maxJobs must be a whole number, 1 or more (got ${options.maxJobs})`);
    this.now = options.now ?? Date.now;
  }

  /** Adds a job as pending and starts it when a slot is free; refuses a known id or a volume an unfinished job uses. */
  add(job: NewJob): JobRecord {
    if (this.stopping) throw new VolmergeError('busy', `job ${job.id}: the agent is stopping and takes no new jobs`);
    const existing = this.entries.get(job.id);
    if (existing?.held && existing.record.status === 'pending') this.entries.delete(job.id);
    else if (existing) throw new VolmergeError('job-exists', `job ${job.id} already exists; use a new job id (or Job.delete the old one once it has finished)`);
    const holder = this.unfinishedUsing(job.volumes);
    if (holder) {
      throw new VolmergeError('busy', `job ${job.id}: ${holder.volume} is in use by job ${holder.id} (${holder.status}); wait for it to finish`);
    }
    const record = this.newRecord(job);
    this.entries.set(job.id, { record, work: job.work, controller: new AbortController() });
    this.queue.push(job.id);
    this.options.onTransition?.(copy(record));
    this.pump();
    return copy(record);
  }

  /** Shows a recovered job as pending without queueing it; a later add() with the same id takes its place. */
  hold(job: Omit<NewJob, 'work'>): JobRecord {
    const existing = this.entries.get(job.id);
    if (existing && !(existing.held && existing.record.status === 'pending')) return copy(existing.record);
    const record = this.newRecord(job);
    this.entries.set(job.id, { record, work: async () => undefined, controller: new AbortController(), held: true });
    this.options.onTransition?.(copy(record));
    return copy(record);
  }

  /** Records a recovered job that ended without running here: failed, or done by another run (with a note); a held one ends so. */
  addEnded(job: Omit<NewJob, 'work'>, ending: { status: 'failed'; error: JobError } | { status: 'done'; note: string }): JobRecord {
    const existing = this.entries.get(job.id);
    if (existing && !(existing.held && existing.record.status === 'pending')) return copy(existing.record);
    const entry: Entry = existing ?? { record: this.newRecord(job), work: async () => undefined, controller: new AbortController(), held: true };
    this.entries.set(job.id, entry);
    if (ending.status === 'done') Object.assign(entry.record, { progress: 100, note: ending.note });
    this.finish(entry, ending.status, ending.status === 'failed' ? ending.error : undefined);
    return copy(entry.record);
  }

  /** One job, or undefined. */
  get(id: string): JobRecord | undefined {
    const entry = this.entries.get(id);
    return entry ? copy(entry.record) : undefined;
  }

  /** Jobs in the order they were added; only those named when ids is given (unknown ids are skipped). */
  list(ids?: readonly string[]): JobRecord[] {
    const wanted = ids ? new Set(ids) : undefined;
    const found: JobRecord[] = [];
    for (const [id, entry] of this.entries) if (!wanted || wanted.has(id)) found.push(copy(entry.record));
    return found;
  }

  /** Aborts a job: a pending one ends aborted at once, a running one becomes aborting until its work stops. */
  abort(id: string, reason = 'aborted by Job.abort'): JobRecord {
    const entry = this.require(id);
    const { record } = entry;
    if (isFinished(record.status)) throw new VolmergeError('job-not-active', `job ${id} has already ended (${record.status}); nothing to abort`);
    if (record.status === 'pending') {
      const queued = this.queue.indexOf(id);
      if (queued >= 0) this.queue.splice(queued, 1);
      const message = entry.held
        ? `job ${id} ${reason} while it waited to be recovered; its merge stays unfinished and the next merge of this chain finishes it`
        : `job ${id} ${reason} before it started; nothing was changed`;
      this.finish(entry, 'aborted', { code: 'aborted', message });
    } else if (record.status === 'running') {
      this.transition(entry, 'aborting');
      entry.controller.abort(new VolmergeError('aborted', `job ${id} ${reason}`));
    }
    return copy(record);
  }

  /** Forgets a finished job; an unfinished one must be aborted (and have ended) first. */
  delete(id: string): void {
    const entry = this.require(id);
    if (!isFinished(entry.record.status)) {
      throw new VolmergeError('job-not-finished', `job ${id} is ${entry.record.status}; abort it and wait until it has ended before deleting it`);
    }
    clearTimeout(entry.expiry);
    this.entries.delete(id);
  }

  /** Stops taking jobs: pending ones end aborted; running ones get graceMs to finish, then are aborted. Resolves when all have ended. */
  async stop(graceMs: number): Promise<JobRecord[]> {
    this.stopping = true;
    const interrupted: JobRecord[] = [];
    for (const id of [...this.queue]) interrupted.push(this.abort(id, 'was cancelled because the agent stopped'));
    const running = [...this.entries.values()].filter((e) => e.settled && !isFinished(e.record.status));
    const allSettled = Promise.all(running.map((e) => e.settled));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      allSettled.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const entry of running) {
        if (entry.record.status === 'running') interrupted.push(this.abort(entry.record.id, 'was interrupted because the agent stopped'));
      }
      await allSettled;
    }
    for (const entry of this.entries.values()) clearTimeout(entry.expiry);
    return interrupted.map((r) => this.get(r.id) ?? r);
  }

  /** Resolves once no job is pending or running (tests and shutdown use it). */
  async idle(): Promise<void> {
    while (this.running > 0 || this.queue.length > 0) {
      await Promise.all([...this.entries.values()].map((e) => e.settled));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private newRecord(job: Omit<NewJob, 'work'>): JobRecord {
    return {
      id: job.id,
      description: job.description,
      ...(job.cliJobId ? { cliJobId: job.cliJobId } : {}),
      status: 'pending',
      progress: 0,
      volumes: [...job.volumes],
      createdAt: this.now(),
    };
  }

  private require(id: string): Entry {
    const entry = this.entries.get(id);
    if (!entry) throw new VolmergeError('no-such-job', `no job ${id} on this host (finished jobs are forgotten after a while)`);
    return entry;
  }

  private unfinishedUsing(volumes: readonly string[]): { id: string; status: JobStatus; volume: string } | undefined {
    for (const { record } of this.entries.values()) {
      if (isFinished(record.status)) continue;
      const volume = volumes.find((v) => record.volumes.includes(v));
      if (volume) return { id: record.id, status: record.status, volume };
    }
    return undefined;
  }

  private pump(): void {
    while (!this.stopping && this.running < this.options.maxJobs && this.queue.length > 0) {
      const id = this.queue.shift();
      const entry = id === undefined ? undefined : this.entries.get(id);
      if (entry) this.start(entry);
    }
  }

  private start(entry: Entry): void {
    const { record, controller } = entry;
    this.running += 1;
    record.startedAt = this.now();
    this.transition(entry, 'running');
    const context = {
      signal: controller.signal,
      progress: (percent: number) => {
        if (!isFinished(record.status)) record.progress = Math.max(record.progress, Math.min(100, Math.max(0, percent)));
      },
      step: (name: string) => {
        if (!isFinished(record.status)) record.step = name;
      },
      result: (facts: JobResult) => void (record.result = facts),
    };
    entry.settled = Promise.resolve()
      .then(() => entry.work(context))
      .then(
        () => {
          record.progress = 100;
          this.finish(entry, 'done');
        },
        (thrown: unknown) => {
          const error = asVolmergeError(thrown);
          if (controller.signal.aborted) {
            const reason: unknown = controller.signal.reason;
            const why = reason instanceof Error ? reason.message : `job ${record.id} aborted`;
            // A merge's own account of its abort names who stopped it and where the chain stands; anything else is wrapped.
            const message = error.details.interrupted ? error.message : `${why} during ${record.step ?? 'its start'}: ${error.message}`;
            this.finish(entry, 'aborted', { code: 'aborted', message });
          } else {
            this.finish(entry, 'failed', { code: error.code, message: error.message });
          }
        },
      )
      .finally(() => {
        this.running -= 1;
        this.pump();
      });
  }

  private finish(entry: Entry, status: JobStatus, error?: JobError): void {
    entry.record.endedAt = this.now();
    if (error) entry.record.error = error;
    this.transition(entry, status);
    entry.expiry = setTimeout(() => {
      if (this.entries.get(entry.record.id) === entry) this.entries.delete(entry.record.id);
    }, this.options.finishedTtlMs);
    entry.expiry.unref();
  }

  private transition(entry: Entry, status: JobStatus): void {
    entry.record.status = status;
    this.options.onTransition?.(copy(entry.record));
  }
}

function copy(record: JobRecord): JobRecord {
  return { ...record, volumes: [...record.volumes], ...(record.error ? { error: { ...record.error } } : {}) };
}
