// The verify step's reading of a merged base: its bitmaps exactly as planned, qemu-img check clean (no corruption, no
// leaked cluster), and no more room used than planned (qcow2); a raw base holds top's whole virtual disk.
import { VolmergeError } from '../errors.js';
import { checkImage } from '../qemu/queries.js';
import type { BitmapInfo, ImageInfo } from '../qemu/types.js';
import type { Inspection } from './inspect.js';
import type { MergePlan } from './plan.js';
import { assertBitmapsExactly } from './verify.js';

/** What verify found; imageEndOffset is null for a raw base. */
export interface VerifyFacts extends Record<string, unknown> {
  imageEndOffset: number | null;
  plannedSize: number;
}

/** A re-read of base after the merge: qemu-img info (a raw base), or its bitmap directory read from disk (qcow2). */
export type BaseReread = { base: ImageInfo } | { baseBitmaps: readonly BitmapInfo[] };

/** Checks base as the re-read found it; for qcow2 runs qemu-img check alongside (reread is the re-read in flight). */
export async function verifyBase(reread: Promise<BaseReread>, inspection: Inspection, plan: MergePlan): Promise<VerifyFacts> {
  const { base } = inspection;
  const plannedSize = plan.neededSize;
  if (plan.baseFormat === 'raw') {
    const read = await reread;
    if (!('base' in read)) throw new VolmergeError('internal', `internal error: base ${base.path} is raw but was re-read as qcow2`);
    const info = read.base;
    const wanted = plan.topVirtualSize ?? 0;
    if (info['virtual-size'] < wanted) {
      throw new VolmergeError('verify-failed', `base ${base.path}: after the merge it holds ${info['virtual-size']} bytes, less than top's virtual size ${wanted}`);
    }
    return { imageEndOffset: null, plannedSize };
  }
  const [read, check] = await Promise.all([reread, checkImage(base.realPath)]);
  assertBitmapsExactly('base' in read ? read.base : read.baseBitmaps, plan.bitmaps.merge, base.path);
  const leaks = check.leaks ?? 0;
  if (leaks > 0) {
    // The leaks step gave back what the plan found, and nothing since may leak: only a writer other than this merge can.
    throw new VolmergeError(
      'verify-failed',
      `base ${base.path}: qemu-img check finds ${leaks} leaked clusters after the merge (counted, pointed at by nothing); base's data and bitmaps ` +
        'are merged, but is another process writing it? run the same merge again: it gives them back',
    );
  }
  const used = check['image-end-offset'] ?? null;
  if (used !== null && used > plannedSize) {
    throw new VolmergeError(
      'verify-failed',
      `base ${base.path}: the merge used ${used} bytes (image-end-offset) but planned ${plannedSize}; base's data and bitmaps are merged and valid, ` +
        'but volmerge sized this chain wrongly (please report it); run the same merge again: it measures base again and finishes',
    );
  }
  return { imageEndOffset: used, plannedSize };
}
