// The merge plan as pure data: computed from what inspect and measure found, before anything changes.
import { VolmergeError } from '../errors.js';
import { bitmapsOf, type MeasureInfo } from '../qemu/types.js';
import { describeVolume, type Volume } from '../storage/volume.js';
import { decideBitmaps, type BitmapDecision } from './bitmap-sets.js';
import type { ImageFormat } from './chain-guard.js';
import type { FinalizePlan } from './finalize-plan.js';
import type { Inspection } from './inspect.js';
import type { LeakedClusters } from './measure-base.js';
import { lvExtendTarget, qcow2Needed, type Qcow2SizeEstimate, type SizedBitmap } from './sizes.js';

/** Everything the merge will do, decided before it does any of it. */
export interface MergePlan {
  top: string;
  base: string;
  baseKind: Volume['kind'];
  /** qcow2 or raw (as top's header records it); absent in plans made before raw bases were merged (qcow2). */
  baseFormat?: ImageFormat;
  /** Bytes base must be able to hold during and after the merge (raw base: top's virtual size). */
  neededSize: number;
  /** How neededSize was found, for a qcow2 base (journaled, so that a wrong estimate can be traced). */
  sizing?: Qcow2SizeEstimate;
  /** Top's virtual size: base ends with it when the disk grew after the snapshot. */
  topVirtualSize?: number;
  /** Base's size now. */
  baseSize: number;
  /** Size the base LV is extended to, or null when no extension is needed (or possible: files grow by themselves). */
  extendTo: number | null;
  /** The VG's extent size, for LVs. */
  extentSize: number | null;
  bitmaps: BitmapDecision;
  /** What happens after verify (child rebased, top retired or removed, base shrunk); absent in plans made before it existed. */
  finalize?: FinalizePlan;
  /** Clusters base and top had leaked when planned (a cold merge gives them back after the commit); absent when not counted. */
  leaks?: LeakedClusters;
}

/** What planning needs to know. */
export interface PlanInput extends Pick<Inspection, 'top' | 'base' | 'topInfo' | 'baseInfo' | 'baseFormat' | 'baseLayout'> {
  /** qemu-img measure with base's layout (qcow2 base only). */
  measure?: MeasureInfo;
  /** Where base's qcow2 image ends now (qcow2 base only). */
  baseEnd?: number;
  /** Free room to add on top of the needed size (for a base that becomes the leaf). */
  leafRoom: number;
  /** Drop top's bitmaps that base lacks instead of carrying them (--drop-bitmaps, merge_bitmaps=false). */
  dropBitmaps?: boolean;
  /** Drop the bitmaps found in-use instead of refusing (--drop-inconsistent). */
  dropInconsistent?: boolean;
  /** The end of the merge, planned by planFinalize. */
  finalize?: FinalizePlan;
  /** Base already holds part of top: the bytes top may still bring (see Qcow2SizeEstimate.partialTop). */
  partialTop?: number;
  /** Clusters base and top have leaked (a cold merge counts them, and gives them back after the commit). */
  leaks?: LeakedClusters;
}

/** The bitmaps base keeps after the merge, each with the granularity it will have there. */
function keptBitmaps(input: PlanInput, merge: readonly string[]): SizedBitmap[] {
  const inBase = new Map(bitmapsOf(input.baseInfo).map((b) => [b.name, b.granularity]));
  const inTop = new Map(bitmapsOf(input.topInfo).map((b) => [b.name, b.granularity]));
  return merge.map((name) => ({ name, granularity: inBase.get(name) ?? inTop.get(name) ?? 65536 }));
}

/** The bytes base needs: top's virtual size for a raw base; data, metadata and bitmaps in base's own layout for qcow2. */
function sizeBase(input: PlanInput, bitmaps: BitmapDecision): { neededSize: number; sizing?: Qcow2SizeEstimate } {
  const topVirtualSize = input.topInfo['virtual-size'];
  if (input.baseFormat === 'raw') return { neededSize: topVirtualSize };
  if (!input.measure || !input.baseLayout || input.baseEnd === undefined) {
    throw new VolmergeError('internal', `base ${input.base.path}: sizing a qcow2 base needs its measure, layout and end`);
  }
  const sizing = qcow2Needed({
    required: input.measure.required,
    keptBitmaps: keptBitmaps(input, bitmaps.merge),
    layout: input.baseLayout,
    baseEnd: input.baseEnd,
    baseVirtualSize: input.baseInfo['virtual-size'],
    topVirtualSize,
    ...(input.partialTop === undefined ? {} : { partialTop: input.partialTop }),
    ...(input.leaks === undefined ? {} : { leakedClusters: input.leaks.base }),
  });
  return { neededSize: sizing.needed, sizing };
}

/** Refuses a base that cannot take neededSize (VG without the space, fixed device too small, file system too full). */
function checkRoom(plan: MergePlan, base: Volume, input: PlanInput): void {
  const { neededSize } = plan;
  const what = plan.baseFormat === 'raw' ? `top's virtual size of ${neededSize} bytes` : `${neededSize} bytes`;
  if (base.kind === 'lv' && base.lv) {
    plan.extendTo = lvExtendTarget(neededSize, input.leafRoom, base.lv.extentSize, base.lv.sizeBytes);
    const growth = (plan.extendTo ?? base.lv.sizeBytes) - base.lv.sizeBytes;
    if (growth > base.lv.vgFree) {
      throw new VolmergeError(
        'no-space',
        `base ${describeVolume(base)}: needs ${plan.extendTo} bytes (${what} planned) but volume group ${base.lv.vg} has only ${base.lv.vgFree} bytes free ` +
          `(${growth} needed); add a PV to the VG or free space, then run the merge again`,
      );
    }
  } else if (base.kind === 'block') {
    const wanted = neededSize + (plan.baseFormat === 'raw' ? 0 : input.leafRoom);
    if (base.sizeBytes < wanted) {
      throw new VolmergeError(
        'too-small',
        `base ${base.path}: block device of ${base.sizeBytes} bytes is too small for the merge, which needs ${wanted} bytes ` +
          `(${wanted - base.sizeBytes} more); it is not an LV, so volmerge cannot grow it`,
      );
    }
  } else {
    const growth = plan.baseFormat === 'raw' ? Math.min(input.topInfo['actual-size'] ?? 0, Math.max(0, neededSize)) : Math.max(0, neededSize - base.sizeBytes);
    if (base.fsFreeBytes !== undefined && growth > base.fsFreeBytes) {
      throw new VolmergeError('no-space', `base ${base.path}: the merge may grow it by ${growth} bytes but its file system has only ${base.fsFreeBytes} bytes free`);
    }
  }
}

/**
 * The plan of an unfinished merge sized again from what is there now (its bitmap decision kept), for a resumed run:
 * a base LV is extended again before the commit runs again. afterNoSpace: the last commit ran out of space, so at
 * least a tenth more than a base LV has now is planned, whatever the new estimate says.
 */
export function resizePlan(plan: MergePlan, input: PlanInput, afterNoSpace: boolean): MergePlan {
  const baseFormat = plan.baseFormat ?? 'qcow2';
  const sized = sizeBase({ ...input, baseFormat }, plan.bitmaps);
  const now = input.base.lv?.sizeBytes ?? input.base.sizeBytes;
  if (afterNoSpace && input.base.kind === 'lv') sized.neededSize = Math.max(sized.neededSize, now + Math.ceil(now / 10));
  const next: MergePlan = { ...plan, ...sized, baseSize: input.base.sizeBytes, extendTo: null, extentSize: input.base.lv?.extentSize ?? null };
  if (!sized.sizing) delete next.sizing;
  if (input.leaks) next.leaks = input.leaks;
  else delete next.leaks;
  checkRoom(next, input.base, { ...input, baseFormat });
  return next;
}

/** Computes the plan, or throws the error that refuses the merge. */
export function planMerge(input: PlanInput): MergePlan {
  const { top, base } = input;
  const baseFormat = input.baseFormat ?? 'qcow2';
  const baseHoldsBitmaps = baseFormat === 'qcow2' && input.baseLayout?.version !== 2;
  const bitmaps = decideBitmaps(bitmapsOf(input.topInfo), bitmapsOf(input.baseInfo), describeVolume(top), describeVolume(base), {
    baseHoldsBitmaps,
    whyNoBitmaps: baseFormat === 'raw' ? 'is raw and cannot hold bitmaps' : 'is a qcow2 version 2 image (compat=0.10), which cannot hold bitmaps',
    dropBitmaps: input.dropBitmaps === true,
    dropInconsistent: input.dropInconsistent === true,
  });
  return planWithBitmaps(input, bitmaps);
}

/**
 * The plan for a bitmap decision already made (a live merge decides from QMP's view, where every bitmap of a running
 * image reads in-use): base sized for it and checked for room, or the error that refuses the merge.
 */
export function planWithBitmaps(input: PlanInput, bitmaps: BitmapDecision): MergePlan {
  const { top, base } = input;
  const baseFormat = input.baseFormat ?? 'qcow2';
  const plan: MergePlan = {
    top: top.path,
    base: base.path,
    baseKind: base.kind,
    baseFormat,
    ...sizeBase({ ...input, baseFormat }, bitmaps),
    topVirtualSize: input.topInfo['virtual-size'],
    baseSize: base.sizeBytes,
    extendTo: null,
    extentSize: base.lv?.extentSize ?? null,
    bitmaps,
    ...(input.finalize ? { finalize: input.finalize } : {}),
    ...(input.leaks ? { leaks: input.leaks } : {}),
  };
  checkRoom(plan, base, input);
  return plan;
}
