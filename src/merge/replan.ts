// A resumed merge sizes base again from what is there now: a commit that ran out of space (or a plan made before
// volmerge sized bases by their layout) is not repeated against the same too small base, and the clusters that the
// interrupted run left leaked (which the resumed commit cannot reuse) are counted.
import type { Inspection } from './inspect.js';
import { measureBase } from './measure-base.js';
import { resizePlan, type MergePlan } from './plan.js';

/** The plan sized again for a resumed run (measure and base's end read now); throws the refusal when base cannot take it. */
export async function replanSizes(inspection: Inspection, plan: MergePlan, leafRoom: number, afterNoSpace: boolean): Promise<MergePlan> {
  const sizes = await measureBase(inspection, {}, true);
  return resizePlan(plan, { ...inspection, ...sizes, leafRoom }, afterNoSpace);
}
