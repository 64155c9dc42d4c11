// Agent start-up recovery, through a job store: every journal left running is probed; its job is resumed, ended
// (volume gone), retried later (a query failed, which never means gone), or flagged as needing attention (unreadable).
import { toJobStore, JournalWriter } from '../engine/journal-writer.js';
import type { Journal } from '../engine/journal.js';
import type { JobStore, StoredJournal } from '../engine/store.js';
import { probeVolumes, volumeDeletedError } from '../engine/volume-probe.js';
import { asVolmergeError, VolmergeError, type ErrorCode } from '../errors.js';
import { log } from '../log.js';
import type { MergeRequest } from '../merge/request.js';
import { isProcessAlive } from '../os/proc.js';
import { readChain, readInfo } from '../qemu/queries.js';
import { topRemovalStarted } from '../steps/cold-merge.js';
import { readLockHolder } from './chain-lock.js';
import { libvirtAdvice, libvirtDomainSilence } from './libvirt-orphan.js';
import { liveAdvice, liveMonitorSilence } from './live-recovery.js';
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
  /**
   * Holds a job's volumes while they are probed (a shared VG's chain is activated here only for the look); resolves
   * with what puts them back. Rejects when they cannot be held (another host uses them): the job then waits.
   */
  holdVolumes?(journal: Journal): Promise<() => Promise<void>>;
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

/** What one probe decided: the job's state, and the job to hand to options.resume once the store is closed. */
interface Decision {
  outcome: RecoveredJob;
  resumable?: ResumableJob;
}

/** Probes one running job's volumes (stat or lvs, then qemu-img info), held through options.holdVolumes, and decides what becomes of it. */
async function recoverOne(store: JobStore, key: string, journal: Journal, options: RecoveryOptions): Promise<Decision | undefined> {
  if (await runByAnother(journal)) {
    log.info(`recovery: job ${journal.jobId} is being run by pid ${journal.pid}; left alone`);
    return undefined;
  }
  if (journal.kind === 'libvirt') {
    // The commit goes on inside the domain: re-attach through libvirt while the domain runs, or leave it to an operator.
    const silence = await libvirtDomainSilence(journal).catch((error: unknown) => `libvirt does not answer: ${(error as Error).message}`);
    if (silence !== undefined) return { outcome: { jobId: journal.jobId, state: 'needs-attention', ...describe(journal), error: { code: 'mid-merge', message: libvirtAdvice(journal, silence) } } };
    return { outcome: { jobId: journal.jobId, state: 'resuming', ...describe(journal) }, resumable: { jobId: journal.jobId, request: requestOf(journal), fromStep: nextStep(journal) } };
  }
  if (journal.kind === 'live') {
    // The block job goes on inside the VM: re-attach through its monitor (the job's request keeps the socket), or leave it to an operator.
    const silence = await liveMonitorSilence(journal);
    if (silence !== undefined) return { outcome: { jobId: journal.jobId, state: 'needs-attention', ...describe(journal), error: { code: 'mid-merge', message: liveAdvice(journal, silence) } } };
    return { outcome: { jobId: journal.jobId, state: 'resuming', ...describe(journal) }, resumable: { jobId: journal.jobId, request: requestOf(journal), fromStep: nextStep(journal) } };
  }
  const release = options.holdVolumes ? await options.holdVolumes(journal) : undefined;
  try {
    return await probeAndDecide(store, key, journal);
  } finally {
    await release?.();
  }
}

async function probeAndDecide(store: JobStore, key: string, journal: Journal): Promise<Decision> {
  const topMayBeGone = topRemovalStarted(journal);
  const probe = await probeVolumes(journal.volumes, { topMayBeGone });
  if (probe.state === 'unknown') {
    return { outcome: { jobId: journal.jobId, state: 'waiting', ...describe(journal), error: { code: 'lvm-failed', message: `cannot tell whether the volumes are there: ${probe.reason}; retrying later` } } };
  }
  if (probe.state === 'gone' && probe.role) {
    const error = volumeDeletedError(probe.role, journal.volumes[probe.role].path, probe.reason, journal.jobId);
    await new JournalWriter(store, journal, key).update((j) => {
      j.state = 'failed';
      j.error = { code: error.code, message: error.message };
    });
    return { outcome: { jobId: journal.jobId, state: 'failed', ...describe(journal), error: { code: error.code, message: error.message } } };
  }
  try {
    // The volumes are there; qemu-img must also be able to open the chain (a qemu-img left running by the crashed process holds its locks).
    // Once the job's own remove-top step has started, only base is left to open.
    if (topMayBeGone) await readInfo(journal.volumes.base.path, { format: journal.plan.baseFormat ?? 'qcow2' });
    else await readChain(journal.volumes.top.path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { outcome: { jobId: journal.jobId, state: 'waiting', ...describe(journal), error: { code: error instanceof VolmergeError ? error.code : 'qemu-failed', message: `${reason}; retrying later` } } };
  }
  return {
    outcome: { jobId: journal.jobId, state: 'resuming', ...describe(journal) },
    resumable: { jobId: journal.jobId, request: requestOf(journal), fromStep: nextStep(journal) },
  };
}

/** Probes a job, and calls it waiting when the probe itself failed. */
async function decideOrWait(store: JobStore, key: string, journal: Journal, options: RecoveryOptions): Promise<Decision | undefined> {
  try {
    return await recoverOne(store, key, journal, options);
  } catch (error) {
    const wrapped = asVolmergeError(error);
    return { outcome: { jobId: journal.jobId, state: 'waiting', ...describe(journal), error: { code: wrapped.code, message: wrapped.message } } };
  }
}

/** The journals of a store that this host can take; a job LV that another host holds is that host's job, left to it. */
async function takeableJournals(store: JobStore): Promise<StoredJournal[]> {
  const found: StoredJournal[] = [];
  for (const key of await store.keys()) {
    let entry: StoredJournal | undefined;
    try {
      entry = await store.read(key);
    } catch (error) {
      const wrapped = asVolmergeError(error);
      if (wrapped.code === 'locked-by-other-host') {
        log.info(`recovery: ${store.locationOf(key)} is held by another host: its job runs there; left alone`);
        continue;
      }
      entry = { key, where: store.locationOf(key), error: wrapped };
    }
    if (entry) found.push(entry);
  }
  return found;
}

/** Where recovery finds jobs: a state folder (this host's store), a store, or a way to open one (each retry then opens its own). */
export type RecoverySource = JobStore | string | (() => JobStore);

function opener(where: RecoverySource): () => JobStore {
  if (typeof where === 'function') return where;
  const store = toJobStore(where);
  return () => store;
}

/** Hands a decision on: the job to options.resume (the store that read it is closed by then), its state to options.onUpdate. */
function report(decision: Decision, options: RecoveryOptions): void {
  if (decision.resumable) options.resume(decision.resumable);
  const { outcome } = decision;
  log.info(`recovery: job ${outcome.jobId}: ${outcome.state}${outcome.error ? ` (${outcome.error.message})` : ''}`);
  options.onUpdate?.(outcome);
}

/** Probes a waiting job again after the delay, through a store opened for that probe alone, until it can be resumed or has ended. */
function retryLater(open: () => JobStore, key: string, options: RecoveryOptions): void {
  const delay = options.retryDelayMs ?? 30_000;
  const timer = setTimeout(() => {
    void (async () => {
      if (options.signal?.aborted) return;
      const store = open();
      let decision: Decision | undefined;
      try {
        const entry = await store.read(key).catch((error: unknown) => ({ key, where: key, error: asVolmergeError(error) }));
        if (!entry || 'error' in entry) {
          log.info(`recovery: ${store.locationOf(key)} no longer holds a readable journal${entry ? ` (${entry.error.message})` : ''}; stopped retrying`);
          return;
        }
        if (entry.journal.state !== 'running') return;
        decision = await decideOrWait(store, key, entry.journal, options);
      } finally {
        await store.close();
      }
      if (!decision || options.signal?.aborted) return;
      report(decision, options);
      if (decision.outcome.state === 'waiting') retryLater(open, key, options);
    })();
  }, delay);
  timer.unref();
  options.signal?.addEventListener('abort', () => clearTimeout(timer), { once: true });
}

/**
 * Recovers the jobs of a store (a state folder given as a path is this host's) at agent start: each journal left
 * running is resumed (through options.resume), ended as 'volume-deleted' when a successful query says a volume is
 * gone, or retried later when a query failed; an unreadable journal makes that job 'needs-attention' and the others
 * go on; a job whose state another host holds (a shared VG's job LV) is left to that host. The store is closed (what
 * it activated put back) before any job is handed to options.resume. Resolves with the first pass's findings.
 */
export async function recoverJobs(where: RecoverySource, options: RecoveryOptions): Promise<RecoveredJob[]> {
  const open = opener(where);
  const store = open();
  const decisions: { key: string; decision: Decision }[] = [];
  try {
    for (const entry of await takeableJournals(store)) {
      if ('error' in entry) {
        decisions.push({ key: entry.key, decision: { outcome: { jobId: entry.key, state: 'needs-attention', error: { code: 'needs-attention', message: entry.error.message } } } });
      } else if (entry.journal.state === 'running') {
        const decision = await decideOrWait(store, entry.key, entry.journal, options);
        if (decision) decisions.push({ key: entry.key, decision });
      }
    }
  } finally {
    await store.close();
  }
  for (const { key, decision } of decisions) {
    report(decision, options);
    if (decision.outcome.state === 'waiting') retryLater(open, key, options);
  }
  return decisions.map((d) => d.decision.outcome);
}
