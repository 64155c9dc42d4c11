// The two readings that size a qcow2 base: qemu-img measure of top over base in base's own layout, and where base's
// image ends now. A raw base needs neither (it holds the whole virtual disk).
import { both } from '../both.js';
import { VolmergeError } from '../errors.js';
import { checkImage, measureSubchain, type ReadOptions } from '../qemu/queries.js';
import type { MeasureInfo } from '../qemu/types.js';
import type { GuardedChain } from './inspect.js';
import { measureOptions, roundUp } from './sizes.js';

/** What sizing a qcow2 base reads; empty for a raw base. */
export interface BaseMeasure {
  measure?: MeasureInfo;
  baseEnd?: number;
}

/**
 * Where a qcow2 base ends now: a file's length rounded up to whole clusters (its last cluster may be written only in
 * part), or, on a device (whose size says nothing of the image), qemu-img check's image-end-offset.
 */
async function baseEnd(chain: GuardedChain, clusterSize: number, read: ReadOptions): Promise<number> {
  const { base } = chain;
  if (base.kind === 'file') return roundUp(base.sizeBytes, clusterSize);
  const end = (await checkImage(base.realPath, read))['image-end-offset'];
  if (end === undefined) throw new VolmergeError('bad-output', `base ${base.path}: qemu-img check gave no image-end-offset, so the space the merge needs is unknown`);
  return end;
}

/** Measures top over base with base's layout, and reads where base ends; both only read, and run together (forceShare: a VM holds them). */
export async function measureBase(chain: GuardedChain, read: ReadOptions = {}): Promise<BaseMeasure> {
  const layout = chain.baseLayout;
  if (chain.baseFormat === 'raw' || !layout) return {};
  const { top, base } = chain;
  const [measure, end] = await both(
    measureSubchain(top.realPath, top.driver, base.realPath, base.driver, measureOptions(layout), read),
    baseEnd(chain, layout.clusterSize, read),
  );
  return { measure, baseEnd: end };
}
