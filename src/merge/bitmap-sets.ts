// Decides, from the bitmaps of top and base, what to prune, add, merge and refuse (design.md step 2).
import { VolmergeError } from '../errors.js';
import { isInUse, isValidBitmap, type BitmapInfo } from '../qemu/types.js';

/** What the merge will do with bitmaps. */
export interface BitmapDecision {
  /** Base bitmaps that top lacks as valid ones: removed before the commit. */
  prune: string[];
  /** Valid top bitmaps missing in base: created in base (with top's granularity) after the commit. */
  add: { name: string; granularity: number }[];
  /** Every valid top bitmap: merged from top into base after the commit. */
  merge: string[];
  /** Base bitmaps that top also has valid, but that are disabled in base: enabled when merged. */
  enable: string[];
  /** Disabled top bitmaps: neither copied nor failed on. */
  skipped: string[];
}

/** Computes the bitmap decision; throws 'bitmap-in-use' for an inconsistent bitmap the merge would rely on. */
export function decideBitmaps(top: BitmapInfo[], base: BitmapInfo[], topName: string, baseName: string): BitmapDecision {
  const topInUse = top.filter(isInUse).map((b) => b.name);
  if (topInUse.length > 0) {
    throw new VolmergeError(
      'bitmap-in-use',
      `top ${topName}: bitmap ${topInUse.join(', ')} is in-use (inconsistent, e.g. after a crash); ` +
        'remove it (qemu-img bitmap --remove) or repair it before merging, and take a full backup afterwards',
    );
  }
  const topNames = new Set(top.map((b) => b.name));
  const baseInUseShared = base.filter((b) => isInUse(b) && topNames.has(b.name)).map((b) => b.name);
  if (baseInUseShared.length > 0) {
    throw new VolmergeError(
      'bitmap-in-use',
      `base ${baseName}: bitmap ${baseInUseShared.join(', ')} is in-use (inconsistent) and top has a bitmap of the same name; ` +
        'remove it from base (qemu-img bitmap --remove) before merging',
    );
  }
  const validTop = top.filter(isValidBitmap);
  const validTopNames = new Set(validTop.map((b) => b.name));
  const baseByName = new Map(base.map((b) => [b.name, b]));
  return {
    prune: base.filter((b) => !validTopNames.has(b.name)).map((b) => b.name),
    add: validTop.filter((b) => !baseByName.has(b.name)).map((b) => ({ name: b.name, granularity: b.granularity })),
    merge: validTop.map((b) => b.name),
    enable: validTop.filter((b) => baseByName.has(b.name) && !baseByName.get(b.name)?.flags.includes('auto')).map((b) => b.name),
    skipped: top.filter((b) => !isValidBitmap(b)).map((b) => b.name),
  };
}
