// Step bitmaps: each bitmap the merge keeps is created in base when missing and merged from top, one qemu-img run each.
import type { Step } from '../../../engine/step.js';
import { copyBitmap } from '../../../qemu/mutations.js';
import { readInfo } from '../../../qemu/queries.js';
import { bitmapsOf } from '../../../qemu/types.js';
import { inspected, type MergeContext } from './context.js';

/** The bitmaps step. */
export const bitmapsStep: Step<MergeContext> = {
  name: 'bitmaps',
  writesBitmaps: true,
  journaling: (context) => (context.plan.bitmaps.merge.length === 0 ? 'quiet' : 'durable'),
  async run(context) {
    const { top, base } = inspected(context);
    const { bitmaps } = context.plan;
    if (bitmaps.merge.length === 0) return { merged: [] };
    const adds = new Map(bitmaps.add.map((b) => [b.name, b.granularity]));
    const present = new Set(bitmapsOf(context.baseAfterCommit ?? (await readInfo(base.realPath))).map((b) => b.name));
    for (const name of bitmaps.merge) {
      const granularity = adds.get(name);
      await copyBitmap(base.realPath, top.realPath, {
        name,
        ...(granularity !== undefined && !present.has(name) ? { addWithGranularity: granularity } : {}),
        enable: bitmaps.enable.includes(name),
      });
    }
    return { merged: bitmaps.merge };
  },
};
