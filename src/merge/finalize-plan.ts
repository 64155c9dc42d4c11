// Planning the end of a merge (README "Finishing a merge"): rebase top's child onto base (internal merge), retire and remove top,
// shrink base. Every refusal happens here, before anything changes.
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { realpath } from 'node:fs/promises';
import { VolmergeError } from '../errors.js';
import { describeVolume, resolveVolume, type Volume } from '../storage/volume.js';
import { findChildren, readBacking } from './children.js';
import type { Inspection } from './inspect.js';

/** Top's child in an internal merge: what it is and how its backing file name changes. */
export interface FinalizeChild {
  /** The child as given, made absolute: what qemu-img opens (a relative backing name resolves against its folder). */
  path: string;
  realPath: string;
  identity: string;
  /** The child's backing file name now (it names top): put back when a rebase cannot be verified. */
  backingBefore: string;
  /** The name the child is rebased to: how top names base when that resolves from the child's folder too, else base's absolute path. */
  backingAfter: string;
  /** Base's format, recorded in the child's header by the rebase; absent (qcow2) in plans made before raw bases. */
  backingFormatAfter?: 'qcow2' | 'raw';
}

/** Shrinking base after the merge: planned for an LV, or skipped with the reason (files and fixed block devices). */
export type ShrinkPlan = { planned: true; leafRoom: number; extentSize: number } | { planned: false; reason: string };

/** What happens after verify: all false and null for a plain merge. */
export interface FinalizePlan {
  /** Top's child, rebased onto base (internal merge); null when none was given. */
  child: FinalizeChild | null;
  /** Top is marked not to be used (retired) once the merge is verified: with a child, or when top is to be removed. */
  retireTop: boolean;
  /** Top is removed (lvremove or unlink) once nothing is backed by it. */
  removeTop: boolean;
  /** null when not asked. */
  shrink: ShrinkPlan | null;
}

/** What the caller asked for. */
export interface FinalizeRequest {
  child?: string | undefined;
  removeTop?: boolean | undefined;
  shrink?: boolean | undefined;
  /** Free room to leave in a shrunk base that is now the leaf (no child). */
  leafRoom: number;
}

/** The backing name to give the child: top's own name for base when it resolves to base from the child's folder as well. */
async function backingNameFor(inspection: Inspection, childPath: string): Promise<string> {
  const topsName = inspection.topInfo['backing-filename'];
  if (topsName) {
    const fromChild = isAbsolute(topsName) ? topsName : join(dirname(childPath), topsName);
    const real = await realpath(fromChild).catch(() => undefined);
    if (real === inspection.base.realPath) return topsName;
  }
  return resolvePath(inspection.base.path);
}

/** Checks the given child: a qcow2 volume, neither top nor base, whose backing file is top. */
async function planChild(inspection: Inspection, given: string): Promise<FinalizeChild> {
  const { top, base } = inspection;
  const child: Volume = await resolveVolume(given, 'child');
  if (child.realPath === top.realPath || child.realPath === base.realPath) {
    throw new VolmergeError('bad-chain', `child ${given} is the ${child.realPath === top.realPath ? 'top' : 'base'} volume itself; give the volume backed by top ${top.path}`);
  }
  const path = resolvePath(given);
  const { info, backing } = await readBacking(path);
  const named = info['backing-filename'];
  if (!named || backing !== top.realPath) {
    const what = named ? `is backed by ${named}` : 'has no backing volume';
    throw new VolmergeError('bad-chain', `child ${given} ${what}, not by top ${top.path}; give top's child (the volume whose backing file is top)`);
  }
  return {
    path,
    realPath: child.realPath,
    identity: child.identity,
    backingBefore: named,
    backingAfter: await backingNameFor(inspection, path),
    backingFormatAfter: inspection.baseFormat,
  };
}

/** Why a base cannot be shrunk, or the shrink plan of an LV. */
function planShrink(base: Volume, baseIsLeaf: boolean, leafRoom: number, raw: boolean): ShrinkPlan {
  if (raw) return { planned: false, reason: `base ${base.path} is raw: it holds the whole virtual disk, so it is not shrunk` };
  if (base.kind === 'lv' && base.lv) return { planned: true, leafRoom: baseIsLeaf ? leafRoom : 0, extentSize: base.lv.extentSize };
  if (base.kind === 'file') return { planned: false, reason: `base ${base.path} is a file: it is not shrunk (it takes only the space it uses)` };
  return { planned: false, reason: `base ${base.path} is a fixed-size block device: it cannot be shrunk` };
}

/** Plans the end of the merge, or throws the refusal (bad child, top that cannot or may not be removed). */
export async function planFinalize(inspection: Inspection, request: FinalizeRequest): Promise<FinalizePlan> {
  const { top } = inspection;
  const child = request.child ? await planChild(inspection, request.child) : null;
  const removeTop = request.removeTop === true;
  if (removeTop) {
    if (top.kind === 'block') {
      throw new VolmergeError('unsupported', `top ${top.path} is a plain block device: volmerge removes only LVs and files; merge without --remove-top`);
    }
    const others: string[] = [];
    for (const path of await findChildren(top)) {
      if ((await realpath(path).catch(() => path)) !== child?.realPath) others.push(path);
    }
    if (others.length > 0) {
      throw new VolmergeError(
        'bad-chain',
        `top ${describeVolume(top)} cannot be removed: ${others.join(', ')} ${others.length === 1 ? 'is' : 'are'} backed by it; ` +
          'give its child as --child (an internal merge), or merge without --remove-top',
      );
    }
  }
  return {
    child,
    retireTop: child !== null || removeTop,
    removeTop,
    shrink: request.shrink ? planShrink(inspection.base, child === null, request.leafRoom, inspection.baseFormat === 'raw') : null,
  };
}
