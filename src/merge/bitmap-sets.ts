// Decides, from the bitmaps of top and base, what to prune, add, merge, drop and refuse (README "How a merge works", step 2).
import { VolmergeError } from '../errors.js';
import { isInUse, isValidBitmap, type BitmapInfo } from '../qemu/types.js';

/** What the merge will do with bitmaps. */
export interface BitmapDecision {
  /** Base bitmaps that top lacks as valid ones: removed before the commit. */
  prune: string[];
  /** Valid top bitmaps missing in base: created in base (with top's granularity) after the commit. */
  add: { name: string; granularity: number }[];
  /** Top bitmaps merged from top into base after the commit. */
  merge: string[];
  /** Base bitmaps that top also has valid, but that are disabled in base: enabled when merged. */
  enable: string[];
  /** Disabled top bitmaps: neither copied nor failed on. */
  skipped: string[];
  /** Top bitmaps that base will not have, as the caller asked (--drop-bitmaps); absent in plans made before it existed. */
  drop?: string[];
  /**
   * Bitmaps found in-use (inconsistent, e.g. after a VM crash) in top, or in base under a name top has, that the caller
   * asked to drop (--drop-inconsistent): removed from top and base, neither merged nor kept; their next backup must be
   * a full one. Absent unless asked.
   */
  inconsistent?: string[];
}

/** How the bitmaps are to be decided. */
export interface BitmapOptions {
  /** Base can store persistent bitmaps (a qcow2 version 3); a raw base or a qcow2 version 2 cannot. */
  baseHoldsBitmaps: boolean;
  /** Why base cannot hold bitmaps, for the refusal ("is raw"). */
  whyNoBitmaps?: string;
  /** Do not carry top's bitmaps that base lacks (vdsm's merge_bitmaps=false); the ones base has are still merged. */
  dropBitmaps: boolean;
  /** Drop the bitmaps found in-use (inconsistent) instead of refusing the merge (--drop-inconsistent, drop_inconsistent). */
  dropInconsistent?: boolean;
}

/** How a refusal of an in-use bitmap names the way out. */
const DROP_HINT = 'merge with --drop-inconsistent (the agent: drop_inconsistent) to remove it from top and base and merge the rest';

function refuseInUse(top: BitmapInfo[], base: BitmapInfo[], topName: string, baseName: string): void {
  const topInUse = top.filter(isInUse).map((b) => b.name);
  if (topInUse.length > 0) {
    throw new VolmergeError(
      'bitmap-in-use',
      `top ${topName}: bitmap ${topInUse.join(', ')} is in-use (inconsistent, e.g. after a crash); ` +
        `${DROP_HINT}, or remove it (qemu-img bitmap --remove) or repair it before merging; take a full backup afterwards`,
    );
  }
  const topNames = new Set(top.map((b) => b.name));
  const baseInUseShared = base.filter((b) => isInUse(b) && topNames.has(b.name)).map((b) => b.name);
  if (baseInUseShared.length > 0) {
    throw new VolmergeError(
      'bitmap-in-use',
      `base ${baseName}: bitmap ${baseInUseShared.join(', ')} is in-use (inconsistent) and top has a bitmap of the same name; ` +
        `${DROP_HINT}, or remove it from base (qemu-img bitmap --remove) before merging`,
    );
  }
}

/**
 * The names that --drop-inconsistent drops: top's in-use bitmaps, and base's in-use ones under a name top has (base's
 * other in-use bitmaps are stale and pruned anyway). Sorted.
 */
export function inconsistentNames(top: readonly BitmapInfo[], base: readonly BitmapInfo[]): string[] {
  const topNames = new Set(top.map((b) => b.name));
  const names = [...top.filter(isInUse), ...base.filter((b) => isInUse(b) && topNames.has(b.name))].map((b) => b.name);
  return [...new Set(names)].sort();
}

/** Computes the bitmap decision; throws 'bitmap-in-use' for an inconsistent bitmap the merge would rely on. */
export function decideBitmaps(
  top: BitmapInfo[],
  base: BitmapInfo[],
  topName: string,
  baseName: string,
  options: BitmapOptions = { baseHoldsBitmaps: true, dropBitmaps: false },
): BitmapDecision {
  if (options.dropInconsistent) {
    // The dropped names leave both images first (the drop step); the rest is decided as if they had never been there.
    const inconsistent = inconsistentNames(top, base);
    const gone = new Set(inconsistent);
    const rest = decideBitmaps(
      top.filter((b) => !gone.has(b.name)),
      base.filter((b) => !gone.has(b.name)),
      topName,
      baseName,
      { ...options, dropInconsistent: false },
    );
    return inconsistent.length > 0 ? { ...rest, inconsistent } : rest;
  }
  const baseByName = new Map(base.map((b) => [b.name, b]));
  // Dropping: only top's bitmaps that base has as well (and consistent) are merged; the others may be broken, they go.
  const kept = options.dropBitmaps ? top.filter((b) => baseByName.has(b.name) && options.baseHoldsBitmaps) : top;
  refuseInUse(kept, base, topName, baseName);
  const validTop = kept.filter(isValidBitmap);
  if (!options.baseHoldsBitmaps && validTop.length > 0) {
    throw new VolmergeError(
      'bitmaps-unsupported',
      `base ${baseName} ${options.whyNoBitmaps ?? 'cannot hold bitmaps'}, and top ${topName} has bitmap ${validTop.map((b) => b.name).join(', ')}; ` +
        'merge with --drop-bitmaps to drop them (the next backup of this disk must then be a full one)',
    );
  }
  const validTopNames = new Set(validTop.map((b) => b.name));
  const drop = options.dropBitmaps ? top.filter((b) => !validTopNames.has(b.name) && (isValidBitmap(b) || isInUse(b))).map((b) => b.name) : [];
  return {
    prune: base.filter((b) => !validTopNames.has(b.name)).map((b) => b.name),
    add: validTop.filter((b) => !baseByName.has(b.name)).map((b) => ({ name: b.name, granularity: b.granularity })),
    merge: validTop.map((b) => b.name),
    enable: validTop.filter((b) => baseByName.has(b.name) && !baseByName.get(b.name)?.flags.includes('auto')).map((b) => b.name),
    skipped: top.filter((b) => !isValidBitmap(b) && !drop.includes(b.name)).map((b) => b.name),
    drop,
  };
}
