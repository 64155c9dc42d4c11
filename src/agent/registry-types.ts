// The shapes of the agent's job table: states, records and the work a job runs.
import type { ErrorCode } from '../errors.js';

/** Every state a job can be in, vdsm's names. */
export const JOB_STATUSES = ['pending', 'running', 'done', 'failed', 'aborting', 'aborted'] as const;
/** One of JOB_STATUSES. */
export type JobStatus = (typeof JOB_STATUSES)[number];

/** States after which a job never changes again. */
export const FINISHED_STATUSES: readonly JobStatus[] = ['done', 'failed', 'aborted'];

/** Whether a job has finished (done, failed or aborted). */
export function isFinished(status: JobStatus): boolean {
  return FINISHED_STATUSES.includes(status);
}

/** What a merge job reports when it ends: top's bitmaps it dropped as asked, and where base's image ends (null: raw). */
export interface JobResult {
  dropped_bitmaps: string[];
  /** Bitmaps found in-use and removed from top and base (drop_inconsistent): the next backup of each must be a full one. */
  dropped_inconsistent: string[];
  used_size: number | null;
}

/** Why a job failed or was aborted. */
export interface JobError {
  code: ErrorCode;
  message: string;
}

/** One job as the table holds it (a copy is handed out; the table's own is never exposed). */
export interface JobRecord {
  id: string;
  description: string;
  /** The journal id of a command-line merge that start-up recovery finishes under id (a UUID). */
  cliJobId?: string;
  status: JobStatus;
  /** 0 to 100. */
  progress: number;
  /** The step running now (or the last one that ran). */
  step?: string;
  /** What a finished job reports beyond its status (a merge: the bitmaps it dropped, the size base uses). */
  result?: JobResult;
  error?: JobError;
  /** A job that ended without running here (start-up recovery found another run had finished it): what happened. */
  note?: string;
  /** Volumes the job works on; two unfinished jobs never share one. */
  volumes: readonly string[];
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
}

/** What a running job may report back to the table. */
export interface JobContext {
  /** Aborted by Job.abort or by the agent stopping. */
  signal: AbortSignal;
  /** Reports progress, 0 to 100; it never moves backwards. */
  progress(percent: number): void;
  /** Reports the step that starts now. */
  step(name: string): void;
  /** Reports what the job found or did, shown with the job once it is done. */
  result(facts: JobResult): void;
}

/** The body of a job: resolves when done, throws when failed (or aborted, after the signal fired). */
export type JobWork = (context: JobContext) => Promise<void>;

/** A job to add to the table. */
export interface NewJob {
  id: string;
  description: string;
  /** The journal id of a command-line merge that recovery adds under another id. */
  cliJobId?: string;
  volumes: readonly string[];
  work: JobWork;
}
