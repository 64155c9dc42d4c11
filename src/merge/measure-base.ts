// The readings that size a qcow2 base: qemu-img measure of top over base in base's own layout, where base's image ends
// now and, for a cold merge, the clusters base and top have leaked. A raw base needs none of them (it holds the whole
// virtual disk).
import { both } from '../both.js';
import { VolmergeError } from '../errors.js';
import { checkImage, measureSubchain, type ReadOptions } from '../qemu/queries.js';
import type { CheckInfo, MeasureInfo } from '../qemu/types.js';
import type { GuardedChain, Inspection } from './inspect.js';
import { measureOptions, roundUp } from './sizes.js';

/** Clusters counted in an image's refcounts that nothing points at (what a killed qemu writer leaves), by volume. */
export interface LeakedClusters {
  base: number;
  /** 0 when not counted (LeakCount 'base'). */
  top: number;
}

/** What sizing a qcow2 base reads; empty for a raw base. */
export interface BaseMeasure {
  measure?: MeasureInfo;
  baseEnd?: number;
  /** Counted when asked (a cold merge, which gives them back): see LeakedClusters and LeakCount. */
  leaks?: LeakedClusters;
}

/**
 * Where a qcow2 base ends now: a file's length rounded up to whole clusters (its last cluster may be written only in
 * part), or, on a device (whose size says nothing of the image), qemu-img check's image-end-offset.
 */
function baseEnd(chain: GuardedChain, clusterSize: number, check: CheckInfo | undefined): number {
  const { base } = chain;
  if (base.kind === 'file') return roundUp(base.sizeBytes, clusterSize);
  const end = check?.['image-end-offset'];
  if (end === undefined) throw new VolmergeError('bad-output', `base ${base.path}: qemu-img check gave no image-end-offset, so the space the merge needs is unknown`);
  return end;
}

/**
 * Which leaked clusters a plan counts: none (a live merge); base's (a cold merge: they take room in base, and any
 * writer's kill, a VM's too, can leave them); or base's and top's, in a run that follows an earlier run of the same job:
 * only a kill of ours can have left some in top that the merge must give back, since the merge opens top read-only
 * unless that earlier run was killed in a step that writes it. Each counted volume costs one `qemu-img check`.
 */
export type LeakCount = 'none' | 'base' | 'both';

/**
 * Measures top over base with base's layout, and reads where base ends; all only read, and run together (forceShare:
 * a VM holds them). leaks: which volumes are checked for leaked clusters (base even when it is a file).
 */
export async function measureBase(chain: GuardedChain, read: ReadOptions = {}, leaks: LeakCount = 'none'): Promise<BaseMeasure> {
  const layout = chain.baseLayout;
  if (chain.baseFormat === 'raw' || !layout) return {};
  const { top, base } = chain;
  const checkBase = leaks !== 'none' || base.kind !== 'file';
  const [measure, [baseCheck, topCheck]] = await both(
    measureSubchain(top.realPath, top.driver, base.realPath, base.driver, measureOptions(layout), read),
    both(checkBase ? checkImage(base.realPath, read) : Promise.resolve(undefined), leaks === 'both' ? checkImage(top.realPath, read) : Promise.resolve(undefined)),
  );
  return {
    measure,
    baseEnd: baseEnd(chain, layout.clusterSize, baseCheck),
    ...(leaks === 'none' ? {} : { leaks: { base: baseCheck?.leaks ?? 0, top: topCheck?.leaks ?? 0 } }),
  };
}

/**
 * What top may still bring into a base that already holds part of it (a live commit its VM's end cut short): all that
 * top holds (its allocated bytes, as qemu-img info reads them), each byte possibly in a new cluster past base's end.
 */
export function partialTopOf(inspection: Pick<Inspection, 'top' | 'topInfo'>): number {
  return inspection.topInfo['actual-size'] ?? inspection.top.sizeBytes;
}
