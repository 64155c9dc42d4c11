// Rides out a libvirtd that is away for a while (restarted mid-job): QEMU and its block job go on meanwhile, so a
// caller that only reads or waits tries again until libvirt answers or its patience runs out.
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { LibvirtUnreachable } from './virsh.js';

/** How long a wait tolerates an unreachable libvirt (VOLMERGE_LIBVIRT_PATIENCE_MS overrides, for tests). */
export function patienceMs(): number {
  const set = Number(process.env.VOLMERGE_LIBVIRT_PATIENCE_MS);
  return Number.isFinite(set) && set >= 0 ? set : 300_000;
}

/** Resolves after ms, or at once when signal aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs body; while libvirt is unreachable, tries again every second until patienceMs has passed (then throws its error). */
export async function patiently<T>(body: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + patienceMs();
  let warned = false;
  for (;;) {
    try {
      return await body();
    } catch (error) {
      if (!(error instanceof LibvirtUnreachable) || Date.now() > deadline) throw error;
      if (signal?.aborted) throw new VolmergeError('aborted', `aborted while libvirt did not answer: ${error.message}`);
      if (!warned) log.warn(`${error.message}; trying again until ${new Date(deadline).toISOString()}`);
      warned = true;
      await pause(1000, signal);
    }
  }
}
