// A resumed merge sizes base again from what is there now: a commit that ran out of space (or a plan made before
// volmerge sized bases by their layout) is not repeated against the same too small base, and the clusters that the
// interrupted run left leaked (which the resumed commit cannot reuse) are counted.
import type { Inspection } from './inspect.js';
import { measureBase, partialTopOf } from './measure-base.js';
import { resizePlan, type MergePlan } from './plan.js';

/** How a resumed run sizes base again, beyond what it reads now. */
export interface ReplanOptions {
  leafRoom: number;
  /** The last commit ran out of space: see resizePlan. */
  afterNoSpace: boolean;
  /** The merge began as the cold end of a vm-gone live job (journaled in its request): base holds part of top. */
  baseHoldsPartOfTop?: boolean | undefined;
}

/** The plan sized again for a resumed run (measure, base's end and leaks read now); throws the refusal when base cannot take it. */
export async function replanSizes(inspection: Inspection, plan: MergePlan, options: ReplanOptions): Promise<MergePlan> {
  const sizes = await measureBase(inspection, {}, 'both');
  const partial = options.baseHoldsPartOfTop ? { partialTop: partialTopOf(inspection) } : {};
  return resizePlan(plan, { ...inspection, ...sizes, leafRoom: options.leafRoom, ...partial }, options.afterNoSpace);
}
