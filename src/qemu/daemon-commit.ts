// The commit inside a qemu-storage-daemon: base opened read-write and top read-only over it (O_DIRECT, as `qemu-img
// commit -t none`), one block-commit job, the same mirror code that qemu-img commit runs. Once the job is ready every
// cluster of top is in base and flushed; it is then completed without a pivot (block-job-cancel of a ready job), which
// leaves top as it was and base read-write for the bitmaps that follow. Top is never opened for writing, so its bitmaps
// cannot be left in-use by a crash here.
import { VolmergeError } from '../errors.js';
import { checkAgainst } from '../schema.js';
import { expectSuccess, NODE, openVolume, type DaemonChain } from './daemon-images.js';
import type { QmpEvent, StorageDaemon } from './qmp.js';

/** The chain to commit. */
export type DaemonCommitChain = DaemonChain;

/** Options of the commit. */
export interface DaemonCommitOptions {
  onProgress?: (percent: number) => void;
  signal?: AbortSignal;
  /** Bytes per second (tests slow the commit down with it). */
  rateLimit?: number;
  /** How often the job's progress is read (ms). */
  pollMs?: number;
}

const JOB = 'commit';

interface JobInfo {
  id: string;
  status: string;
  'current-progress': number;
  'total-progress': number;
  error?: string;
}

/** The commit job as query-jobs shows it (schema-checked), or undefined when it is gone. */
async function readJob(daemon: StorageDaemon): Promise<JobInfo | undefined> {
  const jobs = expectSuccess(await daemon.execute({ execute: 'query-jobs' }), 'qemu-storage-daemon', 'list its jobs', daemon);
  return checkAgainst<JobInfo[]>('qmp-jobs.schema.json', jobs, 'qemu-storage-daemon (query-jobs)').find((job) => job.id === JOB);
}

/** The job's failure as an error naming base: 'no-space' when base ran full, as qemu-img's stderr would say. */
function jobFailed(chain: DaemonCommitChain, error: string, daemon: StorageDaemon): VolmergeError {
  const code = /No space left on device/i.test(error) ? 'no-space' : 'qemu-failed';
  return new VolmergeError(code, `${chain.base}: the commit of ${chain.top} failed in qemu-storage-daemon: ${error}`, { argv: ['qemu-storage-daemon', 'block-commit'], stderr: daemon.stderr() });
}

/** Waits until the job reaches one of the states, reporting progress meanwhile; resolves with the job as then read. */
async function waitForJob(daemon: StorageDaemon, states: readonly string[], options: DaemonCommitOptions): Promise<JobInfo | undefined> {
  let wake: (() => void) | undefined;
  const stop = daemon.onEvent((event: QmpEvent) => {
    if (event.event === 'JOB_STATUS_CHANGE' && event.data.id === JOB) wake?.();
  });
  try {
    for (;;) {
      const job = await readJob(daemon);
      if (!job || states.includes(job.status) || job.status === 'concluded') return job;
      if (job['total-progress'] > 0) options.onProgress?.((100 * job['current-progress']) / job['total-progress']);
      if (options.signal?.aborted) throw new VolmergeError('aborted', 'the commit was aborted');
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, options.pollMs ?? 200);
        wake = done;
        options.signal?.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    stop();
  }
}

/**
 * Commits top into base in the daemon (which holds neither open yet) and leaves both open, base read-write: every
 * cluster of top is in base and flushed when it resolves. On abort the daemon is stopped (SIGTERM: it cancels the job
 * and closes both cleanly) and 'aborted' is thrown.
 */
export async function commitInDaemon(daemon: StorageDaemon, chain: DaemonCommitChain, options: DaemonCommitOptions = {}): Promise<void> {
  await openVolume(daemon, { node: NODE.base, path: chain.base, driver: chain.baseDriver, readOnly: false, direct: true });
  await openVolume(daemon, { node: NODE.top, path: chain.top, driver: chain.topDriver, readOnly: true, direct: true, backing: NODE.base });
  const started = { 'job-id': JOB, device: NODE.top, 'base-node': NODE.base, 'auto-dismiss': false, ...(options.rateLimit ? { speed: options.rateLimit } : {}) };
  expectSuccess(await daemon.execute({ execute: 'block-commit', arguments: started }), chain.base, `commit ${chain.top} into it`, daemon);
  try {
    const ready = await waitForJob(daemon, ['ready'], options);
    if (ready?.status !== 'ready') throw jobFailed(chain, ready?.error ?? `the job ended ${ready?.status ?? 'without a trace'} before it was ready`, daemon);
    options.onProgress?.(100);
    // Ready: top's data is in base and flushed. Cancelling a ready commit completes it without a pivot.
    expectSuccess(await daemon.execute({ execute: 'block-job-cancel', arguments: { device: JOB } }), chain.base, 'complete the commit', daemon);
    const ended = await waitForJob(daemon, ['concluded'], { ...(options.signal ? { signal: options.signal } : {}) });
    if (ended?.error) throw jobFailed(chain, ended.error, daemon);
    expectSuccess(await daemon.execute({ execute: 'job-dismiss', arguments: { id: JOB } }), chain.base, 'dismiss the commit job', daemon);
  } catch (error) {
    if (options.signal?.aborted) {
      await daemon.kill();
      throw new VolmergeError('aborted', `the commit of ${chain.top} into ${chain.base} was aborted; base may hold part of top, which still holds all its data`);
    }
    throw error;
  }
}
