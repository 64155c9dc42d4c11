// Start-up recovery of one job: its volumes are probed (held through the caller's holdVolumes while they are), and it
// is resumed, ended (a volume is gone), left waiting (a query failed, which never means gone), or left to the live
// process that runs it. What recovery says of a job, and how it reaches the agent, are defined here.
import { JournalWriter } from '../engine/journal-writer.js';
import type { Journal } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
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
import { clearCommand, probeJournalBase } from './stale.js';
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
   * failed: ended (its top or base is gone: code volume-deleted, nothing was recreated; its journal vanished while it
   * waited and nothing shows that its merge was finished: job-gone; another run of it failed); done: its journal
   * vanished while it waited and base's generation moved on (another run finished it); needs-attention: its journal
   * cannot be read.
   */
  state: 'resuming' | 'waiting' | 'failed' | 'done' | 'needs-attention';
  top?: string;
  base?: string;
  fromStep?: string;
  error?: { code: ErrorCode; message: string };
  /** A done job: what happened (it ended without this agent running it). */
  note?: string;
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

/** What a job's outcome says of it from its journal: its volumes and where it stands. */
export function describe(journal: Journal): Pick<RecoveredJob, 'top' | 'base' | 'fromStep'> {
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
export interface Decision {
  outcome: RecoveredJob;
  resumable?: ResumableJob;
}

/** Probes one running job's volumes (stat or lvs, then qemu-img info), held through options.holdVolumes, and decides what becomes of it. */
async function recoverOne(store: JobStore, key: string, journal: Journal, options: RecoveryOptions): Promise<Decision | undefined> {
  if (await runByAnother(journal)) {
    log.info(`recovery: job ${journal.jobId} is being run by pid ${journal.pid}; left alone`);
    return undefined;
  }
  if (journal.kind === 'libvirt' || journal.kind === 'live') {
    // A live job whose base is gone or is another volume now is stale: a VM at the same socket (a domain of the same
    // name) is not its VM.
    const base = await probeJournalBase(journal);
    if (base.state === 'gone') return endGone(store, key, journal, base, 'base');
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

/** Ends a job whose top or base is gone (or another volume has its place): failed, nothing touched; a journal whose base is gone is stale. */
async function endGone(store: JobStore, key: string, journal: Journal, probe: { reason: string }, role: 'top' | 'base'): Promise<Decision> {
  const ended = volumeDeletedError(role, journal.volumes[role].path, probe.reason, journal.jobId);
  const clear = role === 'base' ? `; its journal is stale and never acts: clear it with ${clearCommand(store, journal.jobId, journal.request.base)}` : '';
  const error = { code: ended.code, message: `${ended.message}${clear}` };
  await new JournalWriter(store, journal, key).update((j) => {
    j.state = 'failed';
    j.error = error;
  });
  return { outcome: { jobId: journal.jobId, state: 'failed', ...describe(journal), error } };
}

async function probeAndDecide(store: JobStore, key: string, journal: Journal): Promise<Decision> {
  const topMayBeGone = topRemovalStarted(journal);
  const probe = await probeVolumes(journal.volumes, { topMayBeGone, recordedAt: journal.createdAt });
  if (probe.state === 'unknown') {
    return { outcome: { jobId: journal.jobId, state: 'waiting', ...describe(journal), error: { code: 'lvm-failed', message: `cannot tell whether the volumes are there: ${probe.reason}; retrying later` } } };
  }
  if (probe.state === 'gone' && probe.role) return endGone(store, key, journal, probe, probe.role);
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
export async function decideOrWait(store: JobStore, key: string, journal: Journal, options: RecoveryOptions): Promise<Decision | undefined> {
  try {
    return await recoverOne(store, key, journal, options);
  } catch (error) {
    const wrapped = asVolmergeError(error);
    return { outcome: { jobId: journal.jobId, state: 'waiting', ...describe(journal), error: { code: wrapped.code, message: wrapped.message } } };
  }
}

