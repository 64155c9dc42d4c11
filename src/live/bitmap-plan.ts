// Decides what a live merge does with bitmaps, from what qemu holds now: the cold merge's rules (src/merge/bitmap-sets)
// read through QMP's view. While the VM runs every bitmap reads in-use; the live signal of a broken one is
// `inconsistent`, and a bitmap that another job uses is `busy`. Temporary (non-persistent) bitmaps are left alone.
import { VolmergeError } from '../errors.js';
import { decideBitmaps } from '../merge/bitmap-sets.js';
import type { BitmapInfo } from '../qemu/types.js';
import type { LiveChain } from './chain.js';
import type { LiveBitmap } from './queries.js';

/** What the live merge does with bitmaps. */
export interface LiveBitmapPlan {
  /** Base bitmaps that top lacks as valid ones: removed once base is writable (after the commit started). */
  prune: string[];
  /** Base bitmaps that top's are merged into: kept from recording the commit's own writes while the job runs. */
  disable: string[];
  /** Valid top bitmaps missing in base: created in base at the pivot, with top's granularity. */
  add: { name: string; granularity: number }[];
  /** Every valid top bitmap: merged from top into base at the pivot; all of them end enabled and persistent in base. */
  merge: string[];
  /** Disabled top bitmaps: neither carried nor failed on. */
  skipped: string[];
  /**
   * Inconsistent bitmaps (in top, or in base under a name top has) removed from top and base before anything else, as
   * --drop-inconsistent asks; absent unless asked (and in journals made before it existed).
   */
  drop?: string[];
}

/** The persistent bitmaps in the cold merge's terms: 'auto' when recording, 'in-use' when inconsistent. */
function asBitmapInfo(bitmaps: readonly LiveBitmap[]): BitmapInfo[] {
  return bitmaps
    .filter((bitmap) => bitmap.persistent)
    .map((bitmap) => ({
      name: bitmap.name,
      granularity: bitmap.granularity,
      flags: [...(bitmap.recording ? ['auto'] : []), ...(bitmap.inconsistent ? ['in-use'] : [])],
    }));
}

/** Names of the persistent bitmaps that match a test. */
function named(bitmaps: readonly LiveBitmap[], test: (bitmap: LiveBitmap) => boolean): string[] {
  return bitmaps.filter((bitmap) => bitmap.persistent && test(bitmap)).map((bitmap) => bitmap.name);
}

/** The names of the inconsistent bitmaps that a live merge drops: top's, and base's under a name top has. Sorted. */
function inconsistentInVm(chain: LiveChain): string[] {
  const topNames = new Set(named(chain.top.bitmaps, () => true));
  const names = [...named(chain.top.bitmaps, (b) => b.inconsistent === true), ...named(chain.base.bitmaps, (b) => b.inconsistent === true && topNames.has(b.name))];
  return [...new Set(names)].sort();
}

/**
 * The plan; throws 'bitmap-in-use' for an inconsistent bitmap (unless dropInconsistent: then its name is dropped from
 * top and base, and the rest planned without it) and 'busy' for one in use by another job.
 */
export function planLiveBitmaps(chain: LiveChain, options: { dropInconsistent?: boolean } = {}): LiveBitmapPlan {
  if (options.dropInconsistent) {
    const drop = inconsistentInVm(chain);
    const gone = (bitmaps: readonly LiveBitmap[]): LiveBitmap[] => bitmaps.filter((b) => !drop.includes(b.name));
    const rest = planLiveBitmaps({ ...chain, top: { ...chain.top, bitmaps: gone(chain.top.bitmaps) }, base: { ...chain.base, bitmaps: gone(chain.base.bitmaps) } });
    return drop.length > 0 ? { ...rest, drop } : rest;
  }
  const { top, base } = chain;
  const topNames = new Set(named(top.bitmaps, () => true));
  const broken = [
    ...named(top.bitmaps, (b) => b.inconsistent === true).map((name) => `${name} in top ${top.path}`),
    ...named(base.bitmaps, (b) => b.inconsistent === true && topNames.has(b.name)).map((name) => `${name} in base ${base.path}`),
  ];
  if (broken.length > 0) {
    throw new VolmergeError(
      'bitmap-in-use',
      `bitmap ${broken.join(', ')} is inconsistent (qemu found it in-use when it opened the image); ` +
        'merge with --drop-inconsistent (the agent: drop_inconsistent) to remove it from top and base and merge the rest, ' +
        'or remove it with QMP block-dirty-bitmap-remove; take a full backup afterwards',
    );
  }
  const busy = [...named(top.bitmaps, (b) => b.busy), ...named(base.bitmaps, (b) => b.busy && topNames.has(b.name))];
  if (busy.length > 0) {
    throw new VolmergeError('busy', `bitmap ${busy.join(', ')} of ${top.path} -> ${base.path} is in use by another job (a backup?); merge once it has ended`);
  }
  const decision = decideBitmaps(asBitmapInfo(top.bitmaps), asBitmapInfo(base.bitmaps), top.path, base.path);
  const merged = new Set(decision.merge);
  // qemu lists bitmaps newest first; sorted names make the plan the same whatever the order.
  return {
    prune: [...decision.prune].sort(),
    disable: named(base.bitmaps, (b) => b.recording && merged.has(b.name)).sort(),
    add: [...decision.add].sort((a, b) => a.name.localeCompare(b.name)),
    merge: [...decision.merge].sort(),
    skipped: [...decision.skipped].sort(),
  };
}
