// withChain: holds a chain for one job with one shape whatever it lives on. On this host: the chain's lock and the
// host's job store. On a shared VG: this host's chain lock, top and base activated exclusively (refused at once with
// 'locked-by-other-host' when another host holds one), the store in the VG's job LVs; everything put back afterwards.
import { HostJobStore } from '../engine/host-store.js';
import type { JobStore } from '../engine/store.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { acquireChainLock } from './chain-lock.js';
import { missingMeansDeleted } from './failure.js';
import type { MergeJobRequest } from './job-request.js';
import { sharedChainOf, withSharedChain, type SharedChain } from './shared-chain.js';

/** What a held chain gives its body: the job store, and base when it was resolved to take the lock. */
export interface HeldChain {
  store: JobStore;
  base?: Volume;
}

/** Resolves the job's base; a base missing now is 'volume-deleted' for a job whose volumes were validated earlier. */
export async function resolveJobBase(request: MergeJobRequest): Promise<Volume> {
  try {
    return await resolveVolume(request.base, 'base');
  } catch (thrown) {
    throw missingMeansDeleted(thrown, request);
  }
}

/** Runs body with the chain held; a host dry run only reads, so it takes no lock. Throws 'busy' when another merge holds it. */
export async function withChain<T>(request: MergeJobRequest, body: (held: HeldChain) => Promise<T>): Promise<T> {
  let shared: SharedChain | undefined;
  try {
    shared = await sharedChainOf(request.top, request.base, request.child);
  } catch (thrown) {
    throw missingMeansDeleted(thrown, request);
  }
  const who = { jobId: request.jobId, base: request.base };
  if (!shared) {
    const store = new HostJobStore(request.stateDir);
    if (request.dryRun) return body({ store });
    const base = await resolveJobBase(request);
    const lock = await acquireChainLock(base.identity, who);
    try {
      return await body({ store, base });
    } finally {
      await lock.release();
    }
  }
  // A dry run takes the lock too: it activates the volumes for a moment, which must not race a merge of this host.
  const lock = await acquireChainLock(shared.baseIdentity, who);
  try {
    return await withSharedChain(shared, request.stateDir, (store) => body({ store }));
  } finally {
    await lock.release();
  }
}
