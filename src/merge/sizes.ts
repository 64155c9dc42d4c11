// Size arithmetic of a merge: what base needs, rounded to the VG's extents.
import type { MeasureInfo } from '../qemu/types.js';

/** Rounds bytes up to a multiple of unit. */
export function roundUp(bytes: number, unit: number): number {
  if (unit <= 0) return bytes;
  return Math.ceil(bytes / unit) * unit;
}

/** What base must hold after the commit: the sub-chain's data plus top's bitmaps. */
export function neededBytes(measure: MeasureInfo): number {
  return measure.required + (measure.bitmaps ?? 0);
}

/** The size to extend an LV to, or null when it is big enough already. */
export function lvExtendTarget(needed: number, leafRoom: number, extentSize: number, currentSize: number): number | null {
  const target = roundUp(needed + leafRoom, extentSize);
  return target > currentSize ? target : null;
}
