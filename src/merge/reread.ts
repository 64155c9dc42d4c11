// Re-reads top and base after a change, in one qemu-img run: no bitmap of either may have been lost (left in-use).
import { VolmergeError } from '../errors.js';
import { readChain } from '../qemu/queries.js';
import type { ImageInfo } from '../qemu/types.js';
import type { Inspection } from './inspect.js';
import { assertNoInUseBitmaps } from './verify.js';

/** Top and base as qemu-img info --backing-chain reads them now; throws 'bitmap-write-failed' when a bitmap is in-use. */
export async function rereadChain(inspection: Pick<Inspection, 'top' | 'base'>, after: string): Promise<{ top: ImageInfo; base: ImageInfo }> {
  const [top, base] = await readChain(inspection.top.realPath);
  if (!top || !base) throw new VolmergeError('verify-failed', `top ${inspection.top.path}: its backing chain vanished after ${after}`);
  assertNoInUseBitmaps(base, 'base', inspection.base.path, after);
  assertNoInUseBitmaps(top, 'top', inspection.top.path, after);
  return { top, base };
}
