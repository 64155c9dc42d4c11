// Plans a merge through libvirt without changing anything: every header of the chain guarded, the chain read and base
// measured with force-share (QEMU holds the images), the domain's disk found from its live XML, and the bitmaps decided
// from each layer's image and the domain's checkpoints (libvirt has no other view of them).
import { both } from '../both.js';
import { VolmergeError } from '../errors.js';
import type { BitmapDecision } from '../merge/bitmap-sets.js';
import { guardResolved, inspectGuarded, resolveChainVolumes, type Inspection } from '../merge/inspect.js';
import { measureBase } from '../merge/measure-base.js';
import { planWithBitmaps, type MergePlan } from '../merge/plan.js';
import type { MergeRequest } from '../merge/request.js';
import { readInfo } from '../qemu/queries.js';
import { bitmapsOf } from '../qemu/types.js';
import type { Volume } from '../storage/volume.js';
import { planLibvirtBitmaps, type LayerBitmaps, type LibvirtBitmapPlan } from './bitmap-plan.js';
import { checkpointBitmaps } from './checkpoint-xml.js';
import { listCheckpoints } from './checkpoints.js';
import { findDiskChain, type LibvirtChain } from './disk-chain.js';
import { readDomain } from './domain-xml.js';
import type { DomainRef } from './virsh.js';

/** Free room a base LV gets beyond the measured need: the VM writes while the job runs, and to base after the pivot. */
export const LIBVIRT_ROOM_BYTES = 256 * 1024 * 1024;

/** What planning a merge through libvirt found. */
export interface LibvirtPlanned {
  inspection: Inspection;
  plan: MergePlan;
  chain: LibvirtChain;
  bitmaps: LibvirtBitmapPlan;
  /** The domain's checkpoints when planned: a check never deletes one of these. */
  checkpoints: string[];
}

/** The domain's reference in a request (--domain, --connect). */
export function domainRef(request: Pick<MergeRequest, 'domain' | 'connect'>): DomainRef {
  if (!request.domain) throw new VolmergeError('usage', 'a merge through libvirt needs --domain NAME|UUID');
  return { domain: request.domain, uri: request.connect };
}

/** Refuses the options that a merge through libvirt does not take, naming why. */
export function refuseColdOnlyOptions(request: MergeRequest): void {
  const cold: string[] = [];
  if (request.child) cold.push('--child (libvirt points the layer above top at base itself)');
  if (request.removeTop) cold.push('--remove-top');
  if (request.shrink) cold.push('--shrink');
  if (request.qmp) cold.push('--qmp (libvirt owns the monitor)');
  if (cold.length > 0) {
    throw new VolmergeError('unsupported', `a live merge through libvirt (--domain) of ${request.top} does not take ${cold.join(', ')}; leave them out, or stop the VM and merge cold`);
  }
}

/** Each layer's bitmaps, the active one's with those the checkpoints name. */
async function layerBitmaps(ref: DomainRef, chain: LibvirtChain, checkpoints: readonly string[]): Promise<LayerBitmaps[]> {
  // A layer volmerge cannot open (a network source) counts as one without bitmaps.
  const readable = (layer: LibvirtChain['layers'][number]): boolean => layer.format === 'qcow2' && layer.path !== undefined && (layer.type === 'file' || layer.type === 'block');
  return Promise.all(
    chain.layers.map(async (layer, at) => ({
      path: layer.path ?? `a ${layer.type} layer`,
      active: at === 0,
      bitmaps: readable(layer) ? bitmapsOf(await readInfo(layer.path ?? '', { forceShare: true })) : [],
      checkpointed: at === 0 ? await checkpointBitmaps(ref, chain.target, checkpoints) : [],
    })),
  );
}

/** The bitmap plan in the cold plan's terms (what the journal and --json show). */
function asDecision(bitmaps: LibvirtBitmapPlan): BitmapDecision {
  return { prune: bitmaps.prune, add: bitmaps.add, merge: bitmaps.merge, enable: [], skipped: [], drop: bitmaps.drop };
}

/** Plans the merge of request.top into request.base in the domain's disk; throws the refusal that names the volume. */
export async function planLibvirtMerge(request: MergeRequest, volumes?: { top: Volume; base: Volume }): Promise<LibvirtPlanned> {
  refuseColdOnlyOptions(request);
  const ref = domainRef(request);
  const { top, base } = volumes ?? (await resolveChainVolumes(request.top, request.base));
  // The headers are read before any qemu-img opens the images, as for a cold merge; then libvirt's view.
  const guarded = await guardResolved(top, base);
  const chain = await findDiskChain(await readDomain(ref), ref, { top: request.top, base: request.base });
  const checkpoints = await listCheckpoints(ref);
  const layers = await layerBitmaps(ref, chain, checkpoints);
  const topAt = chain.layers.findIndex((layer) => layer.index === chain.top.index);
  const bitmaps = planLibvirtBitmaps({ layers, topAt, checkpoints, dropBitmaps: request.dropBitmaps === true });
  if (bitmaps.merge.length > 0 && guarded.baseLayout?.version === 2) {
    throw new VolmergeError('bitmaps-unsupported', `base ${base.path} is a qcow2 version 2 image (compat=0.10), which cannot hold bitmaps, and top has ${bitmaps.merge.join(', ')}; merge with --drop-bitmaps`);
  }
  const read = { forceShare: true };
  const [inspection, sizes] = await both(inspectGuarded(guarded, read), measureBase(guarded, read));
  const leafRoom = Math.max(request.leafRoom ?? 0, base.kind === 'lv' ? LIBVIRT_ROOM_BYTES : 0);
  const plan = planWithBitmaps({ ...inspection, ...sizes, leafRoom }, asDecision(bitmaps));
  return { inspection, plan, chain, bitmaps, checkpoints };
}
