// The end of a live merge: top's bitmaps carried into base in one transaction, then the chain changed (job-complete:
// the pivot of an active merge; job-finalize: the overlay above top rebacked onto base), the job dismissed, and the
// result read back from qemu. Each part probes first, so that a re-run after a crash finishes what is left.
import { VolmergeError } from '../errors.js';
import { QmpCommandError, type QmpClient } from '../qemu/qmp-client.js';
import type { LiveBitmapPlan } from './bitmap-plan.js';
import { carryBitmaps, verifyCarried } from './bitmap-steps.js';
import type { LiveChain } from './chain.js';
import { LiveGraph } from './graph.js';
import { findJob, waitJob, waitReady } from './job.js';
import { queryGraph, queryNodes } from './queries.js';

/** Whether the VM's chain already shows the merge done: the device on base (active), or the overlay on base (internal). */
export async function mergedInVm(client: QmpClient, chain: LiveChain): Promise<boolean> {
  const graph = new LiveGraph(await queryNodes(client), await queryGraph(client));
  if (chain.active) return graph.devicesOf(chain.base.format).includes(chain.device);
  return chain.above !== undefined && graph.backingOf(chain.above.format) === chain.base.format;
}

/** Sends job-complete (active) or job-finalize (internal); a ready job caught in standby is waited for and asked again. */
async function finish(client: QmpClient, chain: LiveChain, jobId: string, signal?: AbortSignal): Promise<void> {
  const verb = chain.active ? 'job-complete' : 'job-finalize';
  for (;;) {
    try {
      await client.call(verb, { id: jobId });
      return;
    } catch (error) {
      const job = await findJob(client, jobId);
      if (!(error instanceof QmpCommandError) || job?.status !== 'standby') throw error;
      await waitReady(client, jobId, signal ? { signal } : {});
    }
  }
}

/**
 * Carries the bitmaps and changes the chain (see the file comment), then checks it: base in the chain where top was,
 * every carried bitmap in base persistent, enabled and consistent. Run after waitReady; safe to run again.
 */
export async function pivotWithBitmaps(client: QmpClient, chain: LiveChain, plan: LiveBitmapPlan, jobId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  let job = await findJob(client, jobId);
  if (job && ['ready', 'standby', 'pending'].includes(job.status)) {
    // Once base's bitmaps record again, what the job still copies (guest writes only) marks them; after the pivot
    // the guest writes to base directly. Top's bitmaps, merged now, hold every write before.
    await carryBitmaps(client, chain, plan);
    await finish(client, chain, jobId, options.signal);
    job = await waitJob(client, jobId, (state) => state.status === 'concluded', { ...options, what: 'the pivot' }).catch(async (error: unknown) => {
      const after = await findJob(client, jobId);
      if (after?.status === 'concluded') return after;
      throw error;
    });
  } else if (job && job.status !== 'concluded') {
    throw new VolmergeError('qemu-failed', `job ${jobId}: ${job.status} (${job.percent}%), not ready to pivot; wait for it first`);
  }
  if (job) {
    await client.call('job-dismiss', { id: jobId });
    if (job.error) throw new VolmergeError('qemu-failed', `job ${jobId}: qemu ended the commit of ${chain.top.path} with an error: ${job.error}`);
  }
  if (!(await mergedInVm(client, chain))) {
    throw new VolmergeError('aborted', `job ${jobId}: ended without merging ${chain.top.path} into ${chain.base.path} (cancelled?); the chain is as it was`);
  }
  await verifyCarried(client, chain, plan);
}

/**
 * Closes the old top's nodes (format, then storage) once nothing uses them: after a merge qemu keeps them open, and
 * top locked, until blockdev-del. Nodes that qemu made itself (-drive) go away alone; any still open are returned.
 */
export async function closeOldTop(client: QmpClient, chain: LiveChain): Promise<{ left: string[] }> {
  for (const name of [chain.top.format, chain.top.storage]) {
    const graph = new LiveGraph(await queryNodes(client), await queryGraph(client));
    if (!graph.node(name)) continue;
    const users = graph.parents(name).filter((edge) => edge.parent !== chain.top.format);
    if (users.length > 0) {
      throw new VolmergeError('bad-chain', `top ${chain.top.path}: node ${name} is still used by ${users.map((u) => u.parent || u.type).join(', ')}; merge it first`);
    }
    await client.call('blockdev-del', { 'node-name': name }).catch((error: unknown) => {
      if (!(error instanceof QmpCommandError)) throw error;
    });
  }
  const names = new Set((await queryNodes(client)).map((node) => node['node-name']));
  return { left: [chain.top.format, chain.top.storage].filter((name) => names.has(name)) };
}
