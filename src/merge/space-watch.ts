// Space for base while a live merge runs, whatever drives the VM (its QMP monitor, or libvirt): base is grown to what
// the merge needs before the job, a one-shot write threshold asks for the next extension well before base is full,
// and a job that a full base stopped is given space and resumed where the driver can resume it. The caller extends
// the volume (lvextend); a driver sets the threshold and says when it was crossed.
import { VolmergeError } from '../errors.js';

/** Why base was extended. */
export type ExtendReason = 'needed' | 'threshold' | 'nospace';

/** What a way into the VM gives the watch. */
export interface ThresholdDriver {
  /** Base's path, for messages. */
  readonly basePath: string;
  /** Arms the one-shot write threshold on base's storage at this offset (bytes). */
  setThreshold(bytes: number): Promise<void>;
  /** Clears the threshold; never throws. */
  clearThreshold(): Promise<void>;
  /** Calls crossed when base's threshold fired, and full when the job may have stopped on a full base; returns unsubscribe. */
  subscribe(handlers: { crossed(): void; full(): void }): () => void;
  /** Whether a full base has stopped the job now (a driver whose job cannot wait for space leaves this out). */
  jobStoppedFull?(): Promise<boolean>;
  /** Resumes the job that a full base stopped, once base has been extended. */
  resumeJob?(): Promise<void>;
}

/** Options of watchThreshold. */
export interface SpaceOptions {
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
  onExtend?(sizeBytes: number, reason: ExtendReason): void;
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

/** Starts watching base's space through driver (see the file comment); resolves once base holds neededBytes plus room. */
export async function watchThreshold(driver: ThresholdDriver, options: SpaceOptions): Promise<SpaceWatch> {
  const failure = new AbortController();
  let size = options.sizeBytes;
  let queue: Promise<void> = Promise.resolve();

  const grow = async (toBytes: number, reason: ExtendReason): Promise<void> => {
    const grown = await options.extend(toBytes);
    if (grown < toBytes) throw new VolmergeError('extend-failed', `base ${driver.basePath}: extended to ${grown} bytes, not the ${toBytes} asked for`);
    size = grown;
    options.onExtend?.(size, reason);
  };
  const arm = (): Promise<void> => driver.setThreshold(thresholdFor(size, options.roomBytes));
  const resumeIfFull = async (): Promise<void> => {
    if (!driver.jobStoppedFull || !(await driver.jobStoppedFull())) return;
    await grow(size + options.chunkBytes, 'nospace');
    await arm();
    await driver.resumeJob?.();
  };
  const enqueue = (work: () => Promise<void>): void => {
    queue = queue.then(work).catch((error: unknown) => {
      if (!failure.signal.aborted) failure.abort(error);
    });
  };

  if (size < options.neededBytes + options.roomBytes) await grow(options.neededBytes + options.roomBytes, 'needed');
  const unsubscribe = driver.subscribe({
    crossed: () =>
      enqueue(async () => {
        await grow(size + options.chunkBytes, 'threshold');
        await arm();
      }),
    full: () => enqueue(resumeIfFull),
  });
  await arm();
  // A job that a full base stopped before this watch began (a re-run after a crash) is resumed at once.
  enqueue(resumeIfFull);
  return {
    failed: failure.signal,
    get sizeBytes() {
      return size;
    },
    async stop() {
      unsubscribe();
      await queue;
      await driver.clearThreshold();
    },
  };
}
