// Step leaks: gives back the clusters base and top had leaked when the merge was planned (qemu-img check -r leaks),
// once the commit has written base. A qemu writer killed mid-way leaves them: qcow2 writes a new cluster's refcount
// before the table entry that points at it and keeps both in memory until a flush, and qemu-img commit flushes refcounts
// each time it allocates an L2 table (every 512 MiB of virtual disk with 64 KiB clusters), so a commit killed after such
// a flush leaves the clusters it then had in flight counted but pointed at by nothing. qemu never reuses them: the
// plan counts them as room base needs (sizes.ts), and this step, after the commit, leaves none behind. It runs after the
// commit, not before, because a cluster given back before the commit becomes a hole that the commit's allocations
// (runs of whole chunks) can step over: the room it takes could not be planned from what base shows then. The commit's
// qemu-storage-daemon session has ended (base closed, its bitmaps written) before this step: qemu 7.2 has no QMP
// command that repairs leaks, so qemu-img does it, and only when the plan found some.
import type { Step } from '../../../engine/step.js';
import { log } from '../../../log.js';
import { repairLeaks } from '../../../qemu/mutations.js';
import { inspected, type MergeContext } from './context.js';
import { backUpTop } from './top-backup.js';

/** Whether the plan found anything leaked. */
function hasLeaks(context: MergeContext): boolean {
  const leaks = context.plan.leaks;
  return leaks !== undefined && (leaks.base > 0 || leaks.top > 0);
}

/** The leaks step: base's and top's leaked clusters given back; opening them read-write, a crash inside can leave bitmaps in-use. */
export const leaksStep: Step<MergeContext> = {
  name: 'leaks',
  writesBitmaps: true,
  journaling: (context) => (hasLeaks(context) ? 'durable' : 'idle'),
  async run(context) {
    const leaks = context.plan.leaks;
    if (!leaks || !hasLeaks(context)) return { base: 0, top: 0 };
    const { top, base } = inspected(context);
    const facts = { base: 0, top: 0 };
    for (const [role, volume] of [['base', base], ['top', top]] as const) {
      if (leaks[role] === 0) continue;
      // Top is opened read-write here only: its bitmaps are backed up first (the daemon's commit took no copy).
      if (role === 'top') await backUpTop(context);
      facts[role] = await repairLeaks(volume.realPath);
      log.warn(`${role} ${volume.path}: gave back ${facts[role]} leaked clusters (qemu-img check -r leaks), left by an interrupted writer`);
    }
    return facts;
  },
};
