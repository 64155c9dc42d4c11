// Step extend: grows the base LV to the planned size (lvextend re-reads and compares, so running it again is harmless).
import type { Step } from '../../../engine/step.js';
import { log } from '../../../log.js';
import { extendLv } from '../../../storage/lvm.js';
import { inspected, type MergeContext } from './context.js';

/** Whether this run extends anything: an LV whose plan asks for more room. */
function extends_(context: MergeContext): boolean {
  return context.plan.extendTo !== null && context.inspection?.base.lv !== undefined;
}

/** The extend step. */
export const extendStep: Step<MergeContext> = {
  name: 'extend',
  journaling: (context) => (extends_(context) ? 'durable' : 'idle'),
  async run(context) {
    const { base } = inspected(context);
    const target = context.plan.extendTo;
    if (target === null || !base.lv) return { extended: false };
    log.info(`extending ${base.lv.vg}/${base.lv.name} from ${base.lv.sizeBytes} to ${target} bytes`);
    const lv = await extendLv(base.lv.vg, base.lv.name, target);
    return { extended: true, sizeBytes: lv.sizeBytes };
  },
};
