// Step shrink: reduces the base LV to what the merged image uses (image-end-offset, plus leaf room) in whole extents;
// never grows it, never below what the image uses, and checks the image again afterwards.
import type { Step } from '../../../engine/step.js';
import { VolmergeError } from '../../../errors.js';
import { log } from '../../../log.js';
import { roundUp } from '../../../merge/sizes.js';
import { checkImage } from '../../../qemu/queries.js';
import { readLv, reduceLv } from '../../../storage/lvm.js';
import { openPath, type MergeContext } from './context.js';
import type { MergeVolume } from '../../../merge/merge-volume.js';

/** Shrinks the base LV; a file or device is left as it is. */
async function shrinkBase(base: MergeVolume, leafRoom: number, extentSize: number): Promise<Record<string, unknown>> {
  if (!base.lv) return { shrunk: false };
  const path = openPath(base);
  const end = (await checkImage(path))['image-end-offset'];
  if (end === undefined) throw new VolmergeError('bad-output', `base ${base.path}: qemu-img check gave no image-end-offset, so the size it needs is unknown; not shrunk`);
  const target = roundUp(end + leafRoom, extentSize);
  const before = await readLv(base.lv.vg, base.lv.name);
  if (before.sizeBytes <= target) return { shrunk: false, imageEndOffset: end, sizeBytes: before.sizeBytes };
  log.info(`shrinking ${base.lv.vg}/${base.lv.name} from ${before.sizeBytes} to ${target} bytes (image-end-offset ${end}, leaf room ${leafRoom})`);
  const after = await reduceLv(base.lv.vg, base.lv.name, target);
  const recheck = (await checkImage(path))['image-end-offset'];
  if (recheck === undefined || recheck > after.sizeBytes) {
    throw new VolmergeError('verify-failed', `base ${base.path}: after lvreduce to ${after.sizeBytes} bytes qemu-img check says the image ends at ${recheck ?? 'an unknown offset'}; extend the LV back before using it`);
  }
  return { shrunk: true, imageEndOffset: end, sizeBytes: after.sizeBytes, sizeBefore: before.sizeBytes };
}

/** The shrink step. */
export const shrinkStep: Step<MergeContext> = {
  name: 'shrink',
  journaling: (context) => (context.plan.finalize?.shrink?.planned === true ? 'durable' : 'idle'),
  async run(context) {
    const shrink = context.plan.finalize?.shrink;
    if (!shrink) return { shrunk: false };
    if (!shrink.planned) return { shrunk: false, reason: shrink.reason };
    return shrinkBase(context.volumes.base, shrink.leafRoom, shrink.extentSize);
  },
};
