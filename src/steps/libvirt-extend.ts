// Step extend of a live merge through libvirt: a base LV grown to the measured need plus room for the VM's writes, and
// the shared space watch (libvirt's one-shot threshold on base, re-armed after each extension) until the close step
// stops it. Files grow by themselves; a fixed device was checked big enough when planned.
import type { Step } from '../engine/step.js';
import { libvirtThresholdDriver } from '../libvirt/threshold.js';
import { LIBVIRT_ROOM_BYTES } from '../libvirt/merge-plan.js';
import { log } from '../log.js';
import { roundUp } from '../merge/sizes.js';
import { watchThreshold } from '../merge/space-watch.js';
import { extendLv, readLv } from '../storage/lvm.js';
import type { LibvirtContext } from './libvirt-context.js';

/** Starts watching a base LV (nothing for a file or a fixed device); a resumed run calls it again while the job runs. */
export async function startLibvirtWatch(context: LibvirtContext): Promise<Record<string, unknown>> {
  const lv = context.base.lv;
  if (!lv || context.watch) return { extended: false };
  const now = await readLv(lv.vg, lv.name);
  context.watch = await watchThreshold(libvirtThresholdDriver(context.ref, context.record, context.events), {
    sizeBytes: now.sizeBytes,
    neededBytes: context.plan.neededSize,
    roomBytes: Math.max(context.request.leafRoom ?? 0, LIBVIRT_ROOM_BYTES),
    chunkBytes: LIBVIRT_ROOM_BYTES,
    extend: async (toBytes) => (await extendLv(lv.vg, lv.name, roundUp(toBytes, now.extentSize))).sizeBytes,
    onExtend: (size, reason) => log.info(`base ${context.request.base}: ${lv.vg}/${lv.name} extended to ${size} bytes (${reason})`),
  });
  return { extended: context.watch.sizeBytes > now.sizeBytes, sizeBytes: context.watch.sizeBytes };
}

/** The extend step. */
export const libvirtExtendStep: Step<LibvirtContext> = {
  name: 'extend',
  journaling: (context) => (context.base.lv ? 'durable' : 'quiet'),
  run: startLibvirtWatch,
};
