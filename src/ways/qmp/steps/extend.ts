// Step extend of a live merge: a base LV grown to the measured need plus room for the VM's writes, and a watch that
// extends it ahead of the job (write threshold, ENOSPC) until the close step stops it. Files grow by themselves.
import type { Step } from '../../../engine/step.js';
import { log } from '../../../log.js';
import { LIVE_ROOM_BYTES } from '../../../live/merge-plan.js';
import { watchSpace } from '../../../live/space.js';
import { roundUp } from '../../../merge/sizes.js';
import { extendLv, readLv } from '../../../storage/lvm.js';
import type { LiveContext } from './context.js';

/** Starts watching a base LV (nothing for a file or a fixed device); a resumed run calls it again when the job still runs. */
export async function startSpaceWatch(context: LiveContext): Promise<Record<string, unknown>> {
  const lv = context.base.lv;
  if (!lv || context.watch) return { extended: false };
  const now = await readLv(lv.vg, lv.name);
  context.watch = await watchSpace(context.client, context.chain, {
    jobId: context.qemuJob,
    sizeBytes: now.sizeBytes,
    neededBytes: context.plan.neededSize,
    roomBytes: Math.max(context.request.leafRoom ?? 0, LIVE_ROOM_BYTES),
    chunkBytes: LIVE_ROOM_BYTES,
    extend: async (toBytes) => (await extendLv(lv.vg, lv.name, roundUp(toBytes, now.extentSize))).sizeBytes,
    onExtend: (size, reason) => log.info(`base ${context.request.base}: ${lv.vg}/${lv.name} extended to ${size} bytes (${reason})`),
  });
  return { extended: context.watch.sizeBytes > now.sizeBytes, sizeBytes: context.watch.sizeBytes };
}

/** The extend step. */
export const liveExtendStep: Step<LiveContext> = {
  name: 'extend',
  journaling: (context) => (context.base.lv ? 'durable' : 'quiet'),
  run: startSpaceWatch,
};
