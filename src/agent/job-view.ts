// A job as the engine reads it (vdsm's HostJobInfo), in Host.getJobs and in job events: status from vdsm's five words,
// progress a float, error as vdsm's ErrorInfo {code, message}; volmerge's extras (step, aborting, name, cli_job_id, note) ride along.
import type { JobRecord } from './registry-types.js';
import { JsonFloat } from './json-text.js';
import { applicationCode } from './rpc-errors.js';

/** vdsm's type and description of a merge job. */
export const MERGE_JOB = { jobType: 'storage', description: 'merge_subchain' } as const;

/** vdsm's job states (HostJobStatus); an abort in progress is `running` with aborting: true. */
export type VdsmJobStatus = 'pending' | 'running' | 'done' | 'aborted' | 'failed';

/** A job as Host.getJobs and /events show it (rpc-job-status.schema.json). */
export interface JobStatusView {
  id: string;
  job_type: 'storage';
  description: string;
  status: VdsmJobStatus;
  /** 0.0 to 100.0, always written with a decimal point. */
  progress: JsonFloat;
  /** Extensions a vdsm client ignores. */
  aborting?: true;
  step?: string;
  cli_job_id?: string;
  /** Once done: the bitmaps dropped (merge_bitmaps false) and where base's image ends. */
  result?: JobRecord['result'];
  /** A job that ended without running here (another run finished it while it waited): what happened. */
  note?: string;
  error?: { code: number; message: string; name: string };
}

/** vdsm's status word of a job state: aborting is still running (vdsm's engine knows no other word). */
export function vdsmStatus(status: JobRecord['status']): VdsmJobStatus {
  return status === 'aborting' ? 'running' : status;
}

/** The public view of a job record. */
export function jobStatusView(job: JobRecord): JobStatusView {
  return {
    id: job.id,
    job_type: MERGE_JOB.jobType,
    description: job.description,
    status: vdsmStatus(job.status),
    progress: new JsonFloat(Math.round(job.progress * 100) / 100),
    ...(job.status === 'aborting' ? { aborting: true as const } : {}),
    ...(job.step ? { step: job.step } : {}),
    ...(job.cliJobId ? { cli_job_id: job.cliJobId } : {}),
    ...(job.result ? { result: job.result } : {}),
    ...(job.note ? { note: job.note } : {}),
    ...(job.error ? { error: { code: applicationCode(job.error.code), message: job.error.message, name: job.error.code } } : {}),
  };
}
