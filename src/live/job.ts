// The block-commit job of a live merge: start it (or find it already running, after a crash), read its state and
// progress, and wait until its copy is done (ready to pivot for an active merge, pending for an internal one).
import { dirname, isAbsolute, resolve } from 'node:path';
import { VolmergeError } from '../errors.js';
import { QmpCommandError, type QmpClient, type QmpEvent } from '../qemu/qmp-client.js';
import type { LiveChain } from './chain.js';
import { volumeKey } from './identity.js';
import { queryBlockJobs, queryJobs } from './queries.js';

/** A job as volmerge reads it: qemu's status, progress, why it is paused and how it ended. */
export interface LiveJob {
  id: string;
  /** qemu's job status: running, paused, ready, standby, waiting, pending, aborting, concluded. */
  status: string;
  /** Copy progress, 0 to 100. */
  percent: number;
  /** 'nospace' when the job stopped because base is full. */
  ioStatus: 'ok' | 'failed' | 'nospace';
  /** Set when qemu ended the job with an error. */
  error?: string;
}

/** Options of startCommit. */
export interface CommitOptions {
  /** Our own job id, so that a later run finds the job again. */
  jobId: string;
  /** Bandwidth limit in bytes per second (0 or none: unlimited). */
  speed?: number;
}

/** The job with that id, or undefined when qemu has none (never started, or dismissed). */
export async function findJob(client: QmpClient, jobId: string): Promise<LiveJob | undefined> {
  const job = (await queryJobs(client)).find((candidate) => candidate.id === jobId);
  if (!job) return undefined;
  const block = (await queryBlockJobs(client)).find((candidate) => candidate.device === jobId);
  const total = job['total-progress'];
  return {
    id: jobId,
    status: job.status,
    percent: total > 0 ? Math.min(100, Math.floor((job['current-progress'] * 100) / total)) : 0,
    ioStatus: block?.['io-status'] ?? 'ok',
    ...(job.error === undefined ? {} : { error: job.error }),
  };
}

/**
 * The backing name the overlay above top gets when the internal merge ends: top's own (relative) name for base when it
 * names base from the overlay's folder too, as the cold merge does; otherwise qemu writes base's file name.
 */
export async function backingNameAfterMerge(chain: LiveChain): Promise<string | undefined> {
  const name = chain.topBackingName;
  if (!chain.above || !name || isAbsolute(name) || name.startsWith('json:')) return undefined;
  const fromAbove = resolve(dirname(chain.above.storagePath), name);
  const [named, base] = await Promise.all([volumeKey(fromAbove), volumeKey(chain.base.storagePath)]);
  return named !== undefined && named === base ? name : undefined;
}

/**
 * Starts block-commit of top into base under our job id, or returns the job when it already runs (a re-run after a
 * crash). The job never ends on its own: an active commit waits ready for the pivot, an internal one waits pending
 * (auto-finalize off) so that bitmaps are carried before the chain changes; concluded jobs wait to be dismissed.
 * A full base pauses the job (on-error enospc) instead of failing it.
 */
export async function startCommit(client: QmpClient, chain: LiveChain, options: CommitOptions): Promise<LiveJob> {
  const existing = await findJob(client, options.jobId);
  if (existing) return existing;
  const common = { 'job-id': options.jobId, 'base-node': chain.base.format, 'on-error': 'enospc', 'auto-dismiss': false, speed: options.speed ?? 0 };
  const backingFile = chain.active ? undefined : await backingNameAfterMerge(chain);
  const args = chain.active
    ? { ...common, device: chain.top.format }
    : { ...common, device: chain.root, 'top-node': chain.top.format, 'auto-finalize': false, ...(backingFile ? { 'backing-file': backingFile } : {}) };
  try {
    await client.call('block-commit', args);
  } catch (error) {
    if (error instanceof QmpCommandError) {
      throw new VolmergeError('busy', `top ${chain.top.path}: qemu refused to start the commit into ${chain.base.path}: ${error.desc}`);
    }
    throw error;
  }
  const started = await findJob(client, options.jobId);
  if (!started) throw new VolmergeError('qemu-failed', `top ${chain.top.path}: block-commit ${options.jobId} was accepted but qemu does not list the job`);
  return started;
}

/** Whether an event may change the state of job jobId. */
export function concernsJob(event: QmpEvent | undefined, jobId: string): boolean {
  if (!event) return true;
  return event.data.id === jobId || event.data.device === jobId;
}

/** Waits until the job's state satisfies done; 'aborted' error when qemu drops the job, 'qemu-failed' when it ends in error. */
export async function waitJob(
  client: QmpClient,
  jobId: string,
  done: (job: LiveJob) => boolean,
  options: { signal?: AbortSignal; onProgress?: (job: LiveJob) => void; what: string },
): Promise<LiveJob> {
  return client.waitFor(
    async (event) => {
      if (!concernsJob(event, jobId)) return undefined;
      const job = await findJob(client, jobId);
      if (!job) throw new VolmergeError('aborted', `job ${jobId}: qemu no longer has it while waiting for ${options.what}`);
      options.onProgress?.(job);
      if (done(job)) return job;
      if (job.status === 'concluded') {
        throw new VolmergeError('qemu-failed', `job ${jobId}: ended (${job.status}) before ${options.what}${job.error ? `: ${job.error}` : ''}`);
      }
      return undefined;
    },
    { what: options.what, ...(options.signal ? { signal: options.signal } : {}) },
  );
}

/** Waits until the copy is done: 'ready' (active merge, pivot next) or 'pending' (internal merge, finalize next). */
export function waitReady(client: QmpClient, jobId: string, options: { signal?: AbortSignal; onProgress?: (job: LiveJob) => void } = {}): Promise<LiveJob> {
  return waitJob(client, jobId, (job) => job.status === 'ready' || job.status === 'pending', { ...options, what: 'the copy to finish' });
}

/** Changes the job's bandwidth limit (bytes per second, 0: unlimited). */
export async function setSpeed(client: QmpClient, jobId: string, speed: number): Promise<void> {
  await client.call('block-job-set-speed', { device: jobId, speed });
}
