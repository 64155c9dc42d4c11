// Decides what a merge through libvirt does with bitmaps: the cold merge's rules, less what libvirt cannot do. libvirt
// carries a bitmap of top into base at the end of the commit only when it is in top and in consecutive layers below,
// each persistent, recording and consistent, and drops any other silently; volmerge cannot enable or merge a bitmap
// itself (no QMP of its own). So what libvirt would drop is refused, or dropped as asked (--drop-bitmaps), never lost
// unsaid. Base's stale bitmaps are removed through a checkpoint, which removes the name from every layer: refused
// when a layer that stays in the chain has it too, or when it is a checkpoint of the domain's own.
import { VolmergeError } from '../errors.js';
import type { BitmapInfo } from '../qemu/types.js';

/** One layer's bitmaps as volmerge can know them. */
export interface LayerBitmaps {
  path: string;
  /** The disk's active layer: QEMU holds it writable, so its image marks every bitmap in-use (meaningless) and lacks those added since it opened. */
  active: boolean;
  /** From qemu-img info -U (the image's bitmap directory). */
  bitmaps: BitmapInfo[];
  /** Bitmaps of this layer that libvirt's checkpoints name (the active layer's, added while it runs). */
  checkpointed: string[];
}

/** What a merge through libvirt does with bitmaps. */
export interface LibvirtBitmapPlan {
  /** Base bitmaps that top lacks as valid ones: removed before the commit (through a checkpoint). */
  prune: string[];
  /** Valid top bitmaps missing in base: libvirt creates them in base at the end of the commit. */
  add: { name: string; granularity: number }[];
  /** Every top bitmap libvirt carries into base (and that base must hold, valid, afterwards). */
  merge: string[];
  /** Top bitmaps that base will not have, as asked (--drop-bitmaps). */
  drop: string[];
  /** Top's bitmaps whose validity only libvirt can tell (top is the active layer): checked through checkpoints before the commit. */
  checkInLibvirt: string[];
}

/** What planning needs: the disk's layers from the active one down, where top is, the domain's checkpoints, the request. */
export interface BitmapInput {
  layers: LayerBitmaps[];
  topAt: number;
  checkpoints: readonly string[];
  dropBitmaps: boolean;
}

const DEFAULT_GRANULARITY = 64 * 1024;

/** The bitmap of layer by name; on the active layer, one that a checkpoint names counts as there (valid until libvirt says otherwise). */
function find(layer: LayerBitmaps | undefined, name: string): BitmapInfo | undefined {
  if (!layer) return undefined;
  const found = layer.bitmaps.find((bitmap) => bitmap.name === name);
  if (found) return found;
  return layer.checkpointed.includes(name) ? { name, granularity: DEFAULT_GRANULARITY, flags: ['auto'] } : undefined;
}

/** What a layer says of a bitmap: valid, disabled, inconsistent; the active layer's in-use mark means nothing. */
function stateOf(layer: LayerBitmaps, bitmap: BitmapInfo): 'valid' | 'disabled' | 'inconsistent' {
  if (!layer.active && bitmap.flags.includes('in-use')) return 'inconsistent';
  return bitmap.flags.includes('auto') ? 'valid' : 'disabled';
}

/** Why libvirt would not carry top's bitmap name, or undefined when it would (as far as the images tell). */
function whyDropped(input: BitmapInput, name: string): { reason: string; inconsistent: boolean } | undefined {
  let ended = false;
  for (const layer of input.layers.slice(input.topAt)) {
    const bitmap = find(layer, name);
    if (!bitmap) {
      ended = true;
      continue;
    }
    if (ended) return { reason: `it is missing in a layer above ${layer.path}, which has it too (libvirt needs it in consecutive layers)`, inconsistent: false };
    const state = stateOf(layer, bitmap);
    if (state === 'inconsistent') return { reason: `it is inconsistent (in-use) in ${layer.path}`, inconsistent: true };
    if (state === 'disabled') return { reason: `it is disabled in ${layer.path}`, inconsistent: false };
  }
  return undefined;
}

/** The plan; throws 'bitmap-in-use' for an inconsistent bitmap, 'unsupported' for what libvirt would drop or a prune it cannot do alone. */
export function planLibvirtBitmaps(input: BitmapInput): LibvirtBitmapPlan {
  const top = input.layers[input.topAt];
  const base = input.layers[input.topAt + 1];
  if (!top || !base) throw new VolmergeError('internal', 'internal error: a bitmap plan without top and base');
  const topNames = [...new Set([...top.bitmaps.map((b) => b.name), ...top.checkpointed])].sort();
  const merge: string[] = [];
  const drop: string[] = [];
  for (const name of topNames) {
    const dropped = whyDropped(input, name);
    if (!dropped) merge.push(name);
    else if (dropped.inconsistent) {
      throw new VolmergeError('bitmap-in-use', `bitmap ${name} of top ${top.path}: ${dropped.reason}; libvirt would drop it at the commit. Delete its checkpoint (virsh checkpoint-delete) or stop the VM and repair it, and take a full backup afterwards`);
    } else if (input.dropBitmaps && !find(base, name)) drop.push(name);
    else {
      const how = find(base, name) ? 'enable it in base or remove it from base while the VM is stopped' : 'enable it, or merge with --drop-bitmaps to drop it (the next backup must then be a full one)';
      throw new VolmergeError('unsupported', `bitmap ${name} of top ${top.path}: ${dropped.reason}, so libvirt would drop it silently at the commit; ${how}`);
    }
  }
  const merged = new Set(merge);
  const prune = base.bitmaps.map((b) => b.name).filter((name) => !merged.has(name)).sort();
  refuseUnsafePrunes(input, prune);
  return {
    prune,
    add: merge.filter((name) => !find(base, name)).map((name) => ({ name, granularity: find(top, name)?.granularity ?? DEFAULT_GRANULARITY })),
    merge,
    drop,
    checkInLibvirt: top.active ? merge : [],
  };
}

/** Refuses a prune that a checkpoint's delete would make beyond base: a layer that stays has it, or it is the domain's own checkpoint. */
function refuseUnsafePrunes(input: BitmapInput, prune: readonly string[]): void {
  const base = input.layers[input.topAt + 1];
  for (const name of prune) {
    if (input.checkpoints.includes(name)) {
      throw new VolmergeError('unsupported', `base ${base?.path}: stale bitmap ${name} belongs to the domain's checkpoint ${name}; delete that checkpoint (virsh checkpoint-delete) first, or stop the VM and merge cold`);
    }
    const staying = input.layers.filter((layer, at) => at !== input.topAt && at !== input.topAt + 1 && find(layer, name));
    if (staying.length > 0) {
      throw new VolmergeError('unsupported', `base ${base?.path}: stale bitmap ${name} is also in ${staying.map((l) => l.path).join(', ')}, which stays in the chain, and libvirt can only remove it from every layer at once; stop the VM and merge cold`);
    }
  }
}
