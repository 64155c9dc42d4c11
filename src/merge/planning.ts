// Inspect and plan a merge without changing anything: the volumes resolved, every header of the chain checked before
// qemu-img opens it, top and base read, base measured in its own layout, the end of the merge planned.
import { both } from '../both.js';
import { planFinalize } from './finalize-plan.js';
import { guardResolved, inspectGuarded, resolveChainVolumes, type Inspection } from './inspect.js';
import { measureBase, partialTopOf, type LeakCount } from './measure-base.js';
import { planMerge, type MergePlan } from './plan.js';
import type { MergeRequest } from './request.js';
import type { Volume } from '../storage/volume.js';

/**
 * Inspects and plans without changing anything (volumes: top and base resolved already; leaks: which volumes' leaked
 * clusters are counted, see LeakCount); throws the refusal that names the volume.
 */
export async function planFor(request: MergeRequest, volumes?: { top: Volume; base: Volume }, leaks: LeakCount = 'base'): Promise<{ inspection: Inspection; plan: MergePlan }> {
  const { top, base } = volumes ?? (await resolveChainVolumes(request.top, request.base));
  // Every header of the chain is read and checked before any qemu-img opens it.
  const guarded = await guardResolved(top, base);
  // Both only read: measure runs while the chain is read; a bad chain is reported as such, not as a failed measure.
  const [inspection, sizes] = await both(inspectGuarded(guarded), measureBase(guarded, {}, leaks));
  const leafRoom = request.leafRoom ?? 0;
  const finalize = await planFinalize(inspection, { child: request.child, removeTop: request.removeTop, shrink: request.shrink, leafRoom });
  // After an interrupted live commit: top may still bring all it holds (its allocated bytes, as qemu-img info reads them).
  const partialTop = request.baseHoldsPartOfTop ? partialTopOf(inspection) : undefined;
  const plan = planMerge({
    ...inspection,
    ...sizes,
    leafRoom,
    finalize,
    dropBitmaps: request.dropBitmaps === true,
    dropInconsistent: request.dropInconsistent === true,
    ...(partialTop === undefined ? {} : { partialTop }),
  });
  return { inspection, plan };
}
