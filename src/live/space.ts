// Space for base while a live merge runs, without ever pausing the VM: base is grown to what the merge needs before
// the job, a write threshold on base's storage node asks for the next extension well before base is full, and a job
// that ENOSPC paused anyway (the threshold can be overtaken) is given space and resumed. The caller extends the volume.
import { VolmergeError } from '../errors.js';
import { QmpCommandError, type QmpClient, type QmpEvent } from '../qemu/qmp-client.js';
import type { LiveChain } from './chain.js';
import { findJob } from './job.js';

/** Options of watchSpace. */
export interface SpaceOptions {
  jobId: string;
  /** Base's size now, in bytes (the LV or device). */
  sizeBytes: number;
  /** What base must hold at the end (the caller measures it); base is grown to this plus roomBytes first. */
  neededBytes: number;
  /** Free bytes left at the end of base when the next extension is asked for (the threshold's distance from the end). */
  roomBytes: number;
  /** Bytes each extension adds. */
  chunkBytes: number;
  /** Grows base to at least toBytes (lvextend, say) and resolves with its new size. */
  extend(toBytes: number): Promise<number>;
  /** Called after each extension with the new size and why it was made. */
  onExtend?(sizeBytes: number, reason: 'needed' | 'threshold' | 'nospace'): void;
}

/** A running watch. */
export interface SpaceWatch {
  /** Aborts with the error when an extension fails: pass it to the waits (AbortSignal.any) so they stop too. */
  readonly failed: AbortSignal;
  /** Base's size as last extended. */
  readonly sizeBytes: number;
  /** Stops watching and clears the threshold. */
  stop(): Promise<void>;
}

/** The write threshold for a base of sizeBytes: roomBytes before its end (never below zero; 0 would disable it). */
export function thresholdFor(sizeBytes: number, roomBytes: number): number {
  return Math.max(1, sizeBytes - roomBytes);
}

/** Starts watching base's space for the job (see the file comment); resolves once base holds neededBytes plus room. */
export async function watchSpace(client: QmpClient, chain: LiveChain, options: SpaceOptions): Promise<SpaceWatch> {
  const node = chain.base.storage;
  const failure = new AbortController();
  let size = options.sizeBytes;
  let queue: Promise<void> = Promise.resolve();

  const grow = async (toBytes: number, reason: 'needed' | 'threshold' | 'nospace'): Promise<void> => {
    const grown = await options.extend(toBytes);
    if (grown < toBytes) throw new VolmergeError('extend-failed', `base ${chain.base.path}: extended to ${grown} bytes, not the ${toBytes} asked for`);
    size = grown;
    options.onExtend?.(size, reason);
  };
  const setThreshold = (): Promise<unknown> => client.call('block-set-write-threshold', { 'node-name': node, 'write-threshold': thresholdFor(size, options.roomBytes) });
  const resumeIfFull = async (): Promise<void> => {
    const job = await findJob(client, options.jobId);
    if (job?.ioStatus !== 'nospace') return;
    await grow(size + options.chunkBytes, 'nospace');
    await setThreshold();
    await client.call('block-job-resume', { device: options.jobId }).catch((error: unknown) => {
      if (!(error instanceof QmpCommandError)) throw error;
    });
  };
  const enqueue = (work: () => Promise<void>): void => {
    queue = queue.then(work).catch((error: unknown) => {
      if (!failure.signal.aborted) failure.abort(error);
    });
  };
  const onEvent = (event: QmpEvent): void => {
    if (event.event === 'BLOCK_WRITE_THRESHOLD' && event.data['node-name'] === node) {
      enqueue(async () => {
        await grow(size + options.chunkBytes, 'threshold');
        await setThreshold();
      });
    } else if (event.event === 'BLOCK_JOB_ERROR' && event.data.device === options.jobId) {
      enqueue(resumeIfFull);
    }
  };

  if (size < options.neededBytes + options.roomBytes) await grow(options.neededBytes + options.roomBytes, 'needed');
  const unsubscribe = client.onEvent(onEvent);
  await setThreshold();
  // A job that ENOSPC paused before this watch began (a re-run after a crash) is resumed at once.
  enqueue(resumeIfFull);
  return {
    failed: failure.signal,
    get sizeBytes() {
      return size;
    },
    async stop() {
      unsubscribe();
      await queue;
      await client.call('block-set-write-threshold', { 'node-name': node, 'write-threshold': 0 }).catch(() => undefined);
    },
  };
}
