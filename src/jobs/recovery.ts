// Agent start-up recovery, through a job store: every journal left running is probed; its job is resumed, ended
// (volume gone), retried later (a query failed, which never means gone), or flagged as needing attention (unreadable).
import { toJobStore, JournalWriter } from '../engine/journal-writer.js';
import type { Journal } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import { probeVolumes, volumeDeletedError } from '../engine/volume-probe.js';
import { VolmergeError, type ErrorCode } from '../errors.js';
import { log } from '../log.js';
import type { MergeRequest } from '../merge/request.js';
import { isProcessAlive } from '../os/proc.js';
import { readChain, readInfo } from '../qemu/queries.js';
import { topRemovalStarted } from '../steps/cold-merge.js';
import { readLockHolder } from './chain-lock.js';
import { nextStep } from './unfinished.js';

/** A job that can be finished now: runMergeJob({ jobId, stateDir, ...request }) finishes it under the same id. */
export interface ResumableJob {
  jobId: string;
  /** The request as the journal keeps it. */
  request: MergeRequest;
  /** The first step it has not finished ('end': only bookkeeping is left). */
  fromStep: string;
}

/** What recovery says of one job. */
export interface RecoveredJob {
  jobId: string;
  /**
   * resuming: handed to options.resume; waiting: a query of its volumes failed, probed again after retryDelayMs;
   * failed: ended (its top or base is gone: code volume-deleted; nothing was recreated); needs-attention: its journal cannot be read.
   */
  state: 'resuming' | 'waiting' | 'failed' | 'needs-attention';
  top?: string;
  base?: string;
  fromStep?: string;
  error?: { code: ErrorCode; message: string };
}

/** How recovery reaches the agent. */
export interface RecoveryOptions {
  /** Called once for each job that can be finished now; the agent queues it and runs it through runMergeJob with the same jobId. */
  resume(job: ResumableJob): void;
  /** Called for every state a job enters (the first pass included): the agent's job listing follows it. */
  onUpdate?(job: RecoveredJob): void;
  /** How long a waiting job waits before its volumes are probed again (default 30 s). */
  retryDelayMs?: number;
  /** Stops the retries (the agent is stopping). */
  signal?: AbortSignal;
}

function describe(journal: Journal): Pick<RecoveredJob, 'top' | 'base' | 'fromStep'> {
  return { top: journal.request.top, base: journal.request.base, fromStep: nextStep(journal) };
}

/** The request a journal keeps; one written before requests kept the end of the merge has it in its plan. */
export function requestOf(journal: Journal): MergeRequest {
  const end = journal.plan.finalize;
  return {
    ...(end?.child ? { child: end.child.path } : {}),
    ...(end?.removeTop ? { removeTop: true } : {}),
    ...(end?.shrink ? { shrink: true } : {}),
    ...journal.request,
  };
}

/** Whether another live process runs this job now (a CLI merge, say): then it is not ours to recover. */
async function runByAnother(journal: Journal): Promise<boolean> {
  if (journal.pid !== undefined && journal.pid !== process.pid && (await isProcessAlive(journal.pid, undefined))) {
    const holder = await readLockHolder(journal.volumes.base.identity);
    if (holder && holder.pid === journal.pid) return true;
  }
  return false;
}

/** Probes one running job's volumes (stat or lvs, then qemu-img info) and decides what becomes of it. */
async function recoverOne(store: JobStore, key: string, journal: Journal, options: RecoveryOptions): Promise<RecoveredJob | undefined> {
  if (await runByAnother(journal)) {
    log.info(`recovery: job ${journal.jobId} is being run by pid ${journal.pid}; left alone`);
    return undefined;
  }
  if (journal.kind === 'live') {
    // The agent does not run live merges: the job goes on inside the VM and the CLI re-attaches to it.
    const how = `volmerge merge --top ${journal.request.top} --base ${journal.request.base} --qmp ${journal.request.qmp ?? 'SOCKET'}`;
    const message = `a live merge, run inside the VM; finish it with ${how} (without --qmp once the VM is gone)`;
    return { jobId: journal.jobId, state: 'needs-attention', ...describe(journal), error: { code: 'mid-merge', message } };
  }
  const topMayBeGone = topRemovalStarted(journal);
  const probe = await probeVolumes(journal.volumes, { topMayBeGone });
  if (probe.state === 'unknown') {
    return { jobId: journal.jobId, state: 'waiting', ...describe(journal), error: { code: 'lvm-failed', message: `cannot tell whether the volumes are there: ${probe.reason}; retrying later` } };
  }
  if (probe.state === 'gone' && probe.role) {
    const error = volumeDeletedError(probe.role, journal.volumes[probe.role].path, probe.reason, journal.jobId);
    await new JournalWriter(store, journal, key).update((j) => {
      j.state = 'failed';
      j.error = { code: error.code, message: error.message };
    });
    return { jobId: journal.jobId, state: 'failed', ...describe(journal), error: { code: error.code, message: error.message } };
  }
  try {
    // The volumes are there; qemu-img must also be able to open the chain (a qemu-img left running by the crashed process holds its locks).
    // Once the job's own remove-top step has started, only base is left to open.
    if (topMayBeGone) await readInfo(journal.volumes.base.path, { format: journal.plan.baseFormat ?? 'qcow2' });
    else await readChain(journal.volumes.top.path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { jobId: journal.jobId, state: 'waiting', ...describe(journal), error: { code: error instanceof VolmergeError ? error.code : 'qemu-failed', message: `${reason}; retrying later` } };
  }
  options.resume({ jobId: journal.jobId, request: requestOf(journal), fromStep: nextStep(journal) });
  return { jobId: journal.jobId, state: 'resuming', ...describe(journal) };
}

/** Probes a waiting job again after the delay, until it can be resumed or has ended. */
function retryLater(store: JobStore, key: string, options: RecoveryOptions): void {
  const delay = options.retryDelayMs ?? 30_000;
  const timer = setTimeout(() => {
    void (async () => {
      if (options.signal?.aborted) return;
      const entry = await store.read(key).catch((error: unknown) => ({ key, where: key, error: error as VolmergeError }));
      if (!entry || 'error' in entry) {
        log.info(`recovery: ${store.locationOf(key)} no longer holds a readable journal${entry ? ` (${entry.error.message})` : ''}; stopped retrying`);
        return;
      }
      const { journal } = entry;
      if (journal.state !== 'running') return;
      const outcome = await recoverOne(store, key, journal, options).catch((error: unknown) => {
        log.error(`recovery: job ${journal.jobId}: ${(error as Error).message}`);
        return { jobId: journal.jobId, state: 'waiting' as const };
      });
      if (!outcome) return;
      options.onUpdate?.(outcome);
      if (outcome.state === 'waiting') retryLater(store, key, options);
    })();
  }, delay);
  timer.unref();
  options.signal?.addEventListener('abort', () => clearTimeout(timer), { once: true });
}

/**
 * Recovers the jobs of a store (a state folder given as a path is this host's) at agent start: each journal left
 * running is resumed (through options.resume), ended as 'volume-deleted' when a successful query says a volume is
 * gone, or retried later when a query failed; an unreadable journal makes that job 'needs-attention' and the others
 * go on. Resolves with the first pass's findings.
 */
export async function recoverJobs(where: JobStore | string, options: RecoveryOptions): Promise<RecoveredJob[]> {
  const store = toJobStore(where);
  const found: RecoveredJob[] = [];
  for (const entry of await store.list()) {
    let outcome: RecoveredJob | undefined;
    if ('error' in entry) {
      outcome = { jobId: entry.key, state: 'needs-attention', error: { code: 'needs-attention', message: entry.error.message } };
    } else if (entry.journal.state === 'running') {
      try {
        outcome = await recoverOne(store, entry.key, entry.journal, options);
      } catch (error) {
        const wrapped = error instanceof VolmergeError ? error : new VolmergeError('internal', (error as Error).message);
        outcome = { jobId: entry.journal.jobId, state: 'waiting', ...describe(entry.journal), error: { code: wrapped.code, message: wrapped.message } };
      }
      if (outcome?.state === 'waiting') retryLater(store, entry.key, options);
    }
    if (!outcome) continue;
    log.info(`recovery: job ${outcome.jobId}: ${outcome.state}${outcome.error ? ` (${outcome.error.message})` : ''}`);
    options.onUpdate?.(outcome);
    found.push(outcome);
  }
  return found;
}
