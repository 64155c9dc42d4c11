// One lock per chain, keyed by the live key of base's identity (file:DEV:INO, block:MAJ:MIN, lv:VG/LV: what no two
// volumes share at the same moment, and the same in every release) and shared by the CLI and the agent: a flock(2) on
// a lock file, released by the kernel when the holder dies; a second merge of a busy chain is refused at once.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { tryExclusiveFlock } from '../os/flock.js';
import { isProcessAlive, processStartTicks } from '../os/proc.js';
import { liveKeyOf } from '../storage/volume-identity.js';

/** Where lock files live: host-wide (not per state folder), so that every volmerge on the host sees the same locks. */
export function lockDir(): string {
  return process.env.VOLMERGE_LOCK_DIR || '/run/volmerge/locks';
}

/** Who holds a chain's lock, as the holder writes it into the lock file. */
export interface LockHolder {
  pid: number;
  /** The holder's start time in clock ticks since boot (tells a live holder from a reused pid). */
  startTicks?: number;
  jobId: string;
  base: string;
  since: string;
}

/** The lock file of a volume identity (its live key): readable prefix plus a hash, so that distinct keys never share a file. */
export function lockPathFor(identity: string, dir = lockDir()): string {
  const key = liveKeyOf(identity);
  const readable = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return join(dir, `${readable}-${hash}.lock`);
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const data = JSON.parse(text) as Partial<LockHolder>;
    if (typeof data.pid !== 'number' || typeof data.jobId !== 'string') return undefined;
    return { pid: data.pid, jobId: data.jobId, base: String(data.base ?? ''), since: String(data.since ?? ''), ...(typeof data.startTicks === 'number' ? { startTicks: data.startTicks } : {}) };
  } catch {
    return undefined;
  }
}

/** The holder recorded in a lock file, whether or not it still holds it; undefined when none is recorded. */
async function recordedHolder(path: string): Promise<LockHolder | undefined> {
  try {
    return parseHolder(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Who holds the lock of a volume identity now, or undefined when it is free (a record left by a dead process is ignored). */
export async function readLockHolder(identity: string, dir = lockDir()): Promise<LockHolder | undefined> {
  const holder = await recordedHolder(lockPathFor(identity, dir));
  if (!holder) return undefined;
  return (await isProcessAlive(holder.pid, holder.startTicks)) ? holder : undefined;
}

/** A held chain lock. */
export class ChainLock {
  private released = false;
  constructor(
    readonly path: string,
    readonly holder: LockHolder,
    private readonly handle: FileHandle,
  ) {}

  /** Releases the lock: the file is removed while still held, then closed. Releasing twice is fine. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.handle.truncate(0);
      await unlink(this.path);
    } catch {
      // The lock goes with the descriptor anyway; a leftover file is harmless.
    } finally {
      await this.handle.close();
    }
  }
}

/** Describes a holder for a refusal. */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return 'a process that has not recorded itself yet';
  return `pid ${holder.pid}, job ${holder.jobId}${holder.since ? `, since ${holder.since}` : ''}`;
}

/** Takes the lock of base's identity for a job; throws 'busy' at once, naming the holder (pid, job id), when another holds it. */
export async function acquireChainLock(identity: string, job: { jobId: string; base: string }, dir = lockDir()): Promise<ChainLock> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw new VolmergeError('usage', `cannot create the lock folder ${dir}: ${(error as Error).message}; run as root or set VOLMERGE_LOCK_DIR`);
  }
  const path = lockPathFor(identity, dir);
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    let outcome: 'locked' | 'busy';
    try {
      outcome = await tryExclusiveFlock(handle.fd, path);
    } catch (error) {
      await handle.close();
      throw error;
    }
    if (outcome === 'busy') {
      await handle.close();
      let holder = await recordedHolder(path);
      if (!holder) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        holder = await recordedHolder(path);
      }
      throw new VolmergeError(
        'busy',
        `base ${job.base}: another merge of this chain is running (${describeHolder(holder)}); wait for it to end ` +
          `(volmerge status --base ${job.base} shows it), then run the merge again`,
      );
    }
    // The previous holder may have removed the file between our open and our lock: then ours is an orphan; try again.
    const [mine, named] = [await handle.stat(), await stat(path).catch(() => undefined)];
    if (!named || named.ino !== mine.ino || named.dev !== mine.dev) {
      await handle.close();
      continue;
    }
    const holder: LockHolder = { pid: process.pid, jobId: job.jobId, base: job.base, since: new Date().toISOString() };
    const ticks = await processStartTicks(process.pid);
    if (ticks !== undefined) holder.startTicks = ticks;
    await handle.truncate(0);
    await handle.write(`${JSON.stringify(holder)}\n`, 0);
    await handle.datasync();
    return new ChainLock(path, holder, handle);
  }
  throw new VolmergeError('busy', `base ${job.base}: the lock file ${path} keeps changing under us; try again`);
}
