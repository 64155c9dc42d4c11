// Start-up recovery wired into the job table: merges left unfinished in the state dir, or in the job LVs of a shared VG
// whose lockspace this host has started, become jobs of this agent.
import { log } from '../log.js';
import type { JobRegistry } from './registry.js';
import { recoverJobs, type RecoveredJob, type RecoveryOptions } from '../jobs/recovery.js';
import { recoverSharedVgJobs } from '../jobs/shared-recovery.js';
import { isCliJobId, tableJobId } from './job-ids.js';
import { MERGE_JOB } from './job-view.js';
import { resumeWork } from './merge-work.js';

/** What recovery needs from the agent. */
export interface RecoveryWiring {
  stateDir: string;
  registry: JobRegistry;
  /** Aborted when the agent stops: no more retries. */
  signal: AbortSignal;
  commitRateLimit?: number;
  /** How long a job whose volumes could not be probed waits before the next probe. */
  retryDelayMs?: number;
}

/** The id a recovered job has in the table (a UUID), and the command-line journal id it keeps beside it. */
function tableIds(journalJobId: string): { id: string; cliJobId?: string } {
  return isCliJobId(journalJobId) ? { id: tableJobId(journalJobId), cliJobId: journalJobId } : { id: journalJobId };
}

function volumesOf(job: RecoveredJob): string[] {
  return [job.top, job.base].filter((v): v is string => typeof v === 'string');
}

/** Recovery's callbacks into the job table. */
function recoveryOptions(wiring: RecoveryWiring): RecoveryOptions {
  const { registry } = wiring;
  return {
    signal: wiring.signal,
    ...(wiring.retryDelayMs !== undefined ? { retryDelayMs: wiring.retryDelayMs } : {}),
    resume: (job) => {
      try {
        const { request } = job;
        registry.add({
          ...tableIds(job.jobId),
          description: MERGE_JOB.description,
          volumes: request.child ? [request.top, request.base, request.child] : [request.top, request.base],
          work: resumeWork({
            jobId: job.jobId,
            stateDir: wiring.stateDir,
            request,
            ...(wiring.commitRateLimit ? { commitRateLimit: wiring.commitRateLimit } : {}),
          }),
        });
        log.info(`recovery: job ${job.jobId} queued to finish from step ${job.fromStep}`, { job: job.jobId, fromStep: job.fromStep });
      } catch (error) {
        log.warn(`recovery: job ${job.jobId} not queued: ${(error as Error).message}`, { job: job.jobId });
      }
    },
    onUpdate: (job) => {
      const base = { ...tableIds(job.jobId), description: MERGE_JOB.description, volumes: volumesOf(job) };
      if (job.state === 'waiting') registry.hold(base);
      else if (job.state === 'done') registry.addEnded(base, { status: 'done', note: job.note ?? `job ${job.jobId} was finished by another run` });
      else if (job.state === 'failed' || job.state === 'needs-attention') {
        registry.addEnded(base, { status: 'failed', error: job.error ?? { code: 'needs-attention', message: `job ${job.jobId} could not be recovered` } });
      }
    },
  };
}

/**
 * Runs recovery's first pass before the agent serves, over the state dir and then over the shared VGs this host has
 * joined (their job LVs that this host can take: its own, or a dead host's once its lease has expired): resumable jobs
 * are queued under their journal's job id (so an engine polling that id sees it finish; a command-line merge's
 * cli-PID-MS id becomes a UUID, and the old id stays beside it), jobs waiting on a failed query show as pending, ended
 * ones as failed, a waiting job that another run finished (its journal gone, base's generation moved) as done with a
 * note. Never throws: a recovery that cannot run is logged and the agent starts anyway.
 */
export async function recoverIntoRegistry(wiring: RecoveryWiring): Promise<RecoveredJob[]> {
  const options = recoveryOptions(wiring);
  const found: RecoveredJob[] = [];
  try {
    found.push(...(await recoverJobs(wiring.stateDir, options)));
  } catch (error) {
    log.error(`recovery could not run: ${(error as Error).message}; the agent starts without the unfinished jobs of ${wiring.stateDir}`);
  }
  try {
    found.push(...(await recoverSharedVgJobs(wiring.stateDir, options)));
  } catch (error) {
    log.error(`recovery on shared VGs could not run: ${(error as Error).message}; the agent starts without their unfinished jobs`);
  }
  return found;
}
