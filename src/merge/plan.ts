// The merge plan as pure data: computed from what inspect and measure found, before anything changes.
import { VolmergeError } from '../errors.js';
import { bitmapsOf, type ImageInfo, type MeasureInfo } from '../qemu/types.js';
import { describeVolume, type Volume } from '../storage/volume.js';
import { decideBitmaps, type BitmapDecision } from './bitmap-sets.js';
import type { FinalizePlan } from './finalize-plan.js';
import { lvExtendTarget, neededBytes } from './sizes.js';

/** Everything the merge will do, decided before it does any of it. */
export interface MergePlan {
  top: string;
  base: string;
  baseKind: Volume['kind'];
  /** Bytes base must hold after the commit (required + bitmaps of the measure). */
  neededSize: number;
  /** Base's size now. */
  baseSize: number;
  /** Size the base LV is extended to, or null when no extension is needed (or possible: files grow by themselves). */
  extendTo: number | null;
  /** The VG's extent size, for LVs. */
  extentSize: number | null;
  bitmaps: BitmapDecision;
  /** What happens after verify (child rebased, top retired or removed, base shrunk); absent in plans made before it existed. */
  finalize?: FinalizePlan;
}

/** What planning needs to know. */
export interface PlanInput {
  top: Volume;
  base: Volume;
  topInfo: ImageInfo;
  baseInfo: ImageInfo;
  measure: MeasureInfo;
  /** Free room to add on top of the needed size (for a base that becomes the leaf). */
  leafRoom: number;
  /** The end of the merge, planned by planFinalize. */
  finalize?: FinalizePlan;
}

/** Computes the plan, or throws the error that refuses the merge. */
export function planMerge(input: PlanInput): MergePlan {
  const { top, base, measure, leafRoom } = input;
  const bitmaps = decideBitmaps(bitmapsOf(input.topInfo), bitmapsOf(input.baseInfo), describeVolume(top), describeVolume(base));
  const neededSize = neededBytes(measure);
  const plan: MergePlan = {
    top: top.path,
    base: base.path,
    baseKind: base.kind,
    neededSize,
    baseSize: base.sizeBytes,
    extendTo: null,
    extentSize: base.lv?.extentSize ?? null,
    bitmaps,
    ...(input.finalize ? { finalize: input.finalize } : {}),
  };
  if (base.kind === 'lv' && base.lv) {
    plan.extendTo = lvExtendTarget(neededSize, leafRoom, base.lv.extentSize, base.lv.sizeBytes);
    const growth = (plan.extendTo ?? base.lv.sizeBytes) - base.lv.sizeBytes;
    if (growth > base.lv.vgFree) {
      throw new VolmergeError(
        'no-space',
        `base ${describeVolume(base)}: needs ${plan.extendTo} bytes but volume group ${base.lv.vg} has only ${base.lv.vgFree} bytes free ` +
          `(${growth} needed); add a PV to the VG or free space, then run the merge again`,
      );
    }
  } else if (base.kind === 'block') {
    if (base.sizeBytes < neededSize + leafRoom) {
      throw new VolmergeError(
        'too-small',
        `base ${base.path}: block device of ${base.sizeBytes} bytes is too small for the merge, which needs ${neededSize + leafRoom} bytes ` +
          `(${neededSize + leafRoom - base.sizeBytes} more); it is not an LV, so volmerge cannot grow it`,
      );
    }
  } else {
    const growth = Math.max(0, neededSize - base.sizeBytes);
    if (base.fsFreeBytes !== undefined && growth > base.fsFreeBytes) {
      throw new VolmergeError(
        'no-space',
        `base ${base.path}: the merge may grow it by ${growth} bytes but its file system has only ${base.fsFreeBytes} bytes free`,
      );
    }
  }
  return plan;
}

/** The end of a merge as the CLI's --json contract shows it. */
export interface FinalizeSummary {
  child: string | null;
  retireTop: boolean;
  removeTop: boolean;
  shrink: { planned: boolean; leafRoom?: number; reason?: string } | null;
}

/** The plan as the CLI's --json contract shows it (finalize only for plans that have one). */
export function planSummary(plan: MergePlan): {
  neededSize: number;
  baseSize: number;
  extendTo: number | null;
  prune: string[];
  add: string[];
  merge: string[];
  finalize?: FinalizeSummary;
} {
  const end = plan.finalize;
  return {
    neededSize: plan.neededSize,
    baseSize: plan.baseSize,
    extendTo: plan.extendTo,
    prune: [...plan.bitmaps.prune],
    add: plan.bitmaps.add.map((b) => b.name),
    merge: [...plan.bitmaps.merge],
    ...(end
      ? {
          finalize: {
            child: end.child?.path ?? null,
            retireTop: end.retireTop,
            removeTop: end.removeTop,
            shrink: end.shrink === null ? null : end.shrink.planned ? { planned: true, leafRoom: end.shrink.leafRoom } : { planned: false, reason: end.shrink.reason },
          },
        }
      : {}),
  };
}
