// Test helper: small waits and file probes that several suites share.
import { access } from 'node:fs/promises';
import { writeLockedByOther } from '../../src/os/file-locks.js';

/** Waits this many milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls a condition every 50 ms; fails naming what it waited for when it does not hold within timeoutMs. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Whether a path exists (a file, a folder, a device). */
export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * Waits until no process of a process group is left (kill(-pgid, 0) fails): a SIGKILLed qemu-img may still be dying,
 * and holding its image locks, for a few milliseconds after its parent has been reaped.
 */
export async function processGroupGone(pgid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw error;
    }
    if (Date.now() > deadline) throw new Error(`process group ${pgid} still has processes ${timeoutMs} ms after its leader ended`);
    await sleep(10);
  }
}

/**
 * Waits until a holder process (qemu-io, qemu-storage-daemon) has path open and keeps others from writing it, read from
 * /proc/locks: polling with qemu-img info would take a lock of its own, which can make the holder's open fail. Fails
 * when the holder has exited or after timeoutMs.
 */
export async function untilHeldOpen(path: string, holderExited: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await writeLockedByOther(path))) {
    if (holderExited() || Date.now() > deadline) throw new Error(`the holder never held ${path} open (${holderExited() ? 'it exited' : `${timeoutMs} ms`})`);
    await sleep(25);
  }
}
