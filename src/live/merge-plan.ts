// Plans a live merge without changing anything: every header of the chain guarded, the chain read and base measured
// with force-share (the VM holds the images and their locks), the VM's own chain found over QMP, and the bitmaps
// decided from QMP's view (qemu-img shows every bitmap of a running image in-use).
import { both } from '../both.js';
import { VolmergeError } from '../errors.js';
import type { BitmapDecision } from '../merge/bitmap-sets.js';
import { guardResolved, inspectGuarded, resolveChainVolumes, type Inspection } from '../merge/inspect.js';
import { measureBase } from '../merge/measure-base.js';
import { planWithBitmaps, type MergePlan } from '../merge/plan.js';
import type { MergeRequest } from '../merge/request.js';
import type { QmpClient } from '../qemu/qmp-client.js';
import type { Volume } from '../storage/volume.js';
import { planLiveBitmaps, type LiveBitmapPlan } from './bitmap-plan.js';
import { findLiveChain, type LiveChain } from './chain.js';

/** Free room a base LV gets beyond the measured need: the VM writes while the job runs, and to base after the pivot. */
export const LIVE_ROOM_BYTES = 256 * 1024 * 1024;

/** What planning a live merge found. */
export interface LivePlanned {
  inspection: Inspection;
  plan: MergePlan;
  chain: LiveChain;
  bitmaps: LiveBitmapPlan;
}

/** Refuses the options that a live merge does not take, naming why. */
export function refuseColdOnlyOptions(request: MergeRequest): void {
  const cold: string[] = [];
  if (request.child) cold.push('--child (qemu points the overlay above top at base itself)');
  if (request.removeTop) cold.push('--remove-top');
  if (request.shrink) cold.push('--shrink');
  if (request.dropBitmaps) cold.push('--drop-bitmaps');
  if (cold.length > 0) {
    throw new VolmergeError('unsupported', `a live merge (--qmp) of ${request.top} does not take ${cold.join(', ')}; leave them out, or stop the VM and merge cold`);
  }
}

/** The bitmap decision in the cold plan's terms (what the journal and --json show). */
function asDecision(bitmaps: LiveBitmapPlan): BitmapDecision {
  const inconsistent = bitmaps.drop?.length ? { inconsistent: bitmaps.drop } : {};
  return { prune: bitmaps.prune, add: bitmaps.add, merge: bitmaps.merge, enable: [], skipped: bitmaps.skipped, ...inconsistent };
}

/** Plans the live merge of request.top into request.base in the VM behind client; throws the refusal that names the volume. */
export async function planLiveMerge(client: QmpClient, request: MergeRequest, volumes?: { top: Volume; base: Volume }): Promise<LivePlanned> {
  refuseColdOnlyOptions(request);
  const { top, base } = volumes ?? (await resolveChainVolumes(request.top, request.base));
  // The headers are read before any qemu-img opens the images, as for a cold merge; then the VM's own view.
  const guarded = await guardResolved(top, base);
  const chain = await findLiveChain(client, { top: request.top, base: request.base });
  const bitmaps = planLiveBitmaps(chain, { dropInconsistent: request.dropInconsistent === true });
  const read = { forceShare: true };
  const [inspection, sizes] = await both(inspectGuarded(guarded, read), measureBase(guarded, read));
  const leafRoom = Math.max(request.leafRoom ?? 0, base.kind === 'lv' ? LIVE_ROOM_BYTES : 0);
  const plan = planWithBitmaps({ ...inspection, ...sizes, leafRoom }, asDecision(bitmaps));
  return { inspection, plan, chain, bitmaps };
}
