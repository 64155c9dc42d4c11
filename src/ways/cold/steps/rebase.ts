// Step rebase (internal merge): top's child is pointed at base with qemu-img rebase -u and checked with its header. When
// that fails, the child's backing is put back on top when needed and the failure is a RestoredFailure: the executor
// then takes top's retired mark off (the retire step's undo), so the chain child -> top -> base reads as before.
import type { Step } from '../../../engine/step.js';
import { RestoredFailure } from '../../../engine/step.js';
import { asVolmergeError, VolmergeError } from '../../../errors.js';
import { log } from '../../../log.js';
import { readBacking } from '../../../merge/children.js';
import type { FinalizeChild } from '../../../merge/finalize-plan.js';
import { rebaseUnsafe } from '../../../qemu/mutations.js';
import { bitmapsOf, isInUse } from '../../../qemu/types.js';
import type { MergeContext } from './context.js';
import type { MergeVolume } from '../../../merge/merge-volume.js';
import { retireTop } from './retire.js';

/** After a rebase that failed or could not be verified: the child's backing put back on top, or 'needs-attention'. */
async function undoRebase(child: FinalizeChild, top: MergeVolume, cause: VolmergeError): Promise<never> {
  // -U: a child that a process holds (the rebase failed as busy) still shows its header.
  let now = await readBacking(child.path, { forceShare: true }).catch(() => undefined);
  if (now?.backing !== top.realPath) {
    await rebaseUnsafe(child.path, child.backingBefore).catch((error: unknown) => log.warn(`child ${child.path}: putting its backing file back failed: ${asVolmergeError(error).message}`));
    now = await readBacking(child.path, { forceShare: true }).catch(() => undefined);
  }
  if (now?.backing !== top.realPath) {
    throw new VolmergeError(
      'needs-attention',
      `child ${child.path}: the rebase onto base failed (${cause.message}) and its backing file could not be put back to top ${top.path} ` +
        `(it was "${child.backingBefore}"); top stays marked not to be used; check the child with qemu-img info before using it`,
      cause.details,
    );
  }
  throw new RestoredFailure(
    new VolmergeError(
      cause.code === 'busy' ? 'busy' : 'rebase-failed',
      `${cause.message}; child ${child.path} still reads through top ${top.path}, which is no longer marked: fix the cause and run the merge again`,
      cause.details,
    ),
  );
}

/** Points the child at base and verifies it; on failure the chain is left as it was. */
async function rebaseChild(context: MergeContext, child: FinalizeChild): Promise<Record<string, unknown>> {
  const { top, base } = context.volumes;
  const before = await readBacking(child.path);
  if (before.backing === base.realPath) return { rebased: true, already: true, backing: before.info['backing-filename'] ?? null };
  if (before.backing !== top.realPath) {
    throw new RestoredFailure(new VolmergeError('bad-chain', `child ${child.path} is backed by ${before.info['backing-filename'] ?? 'nothing'} now, neither top ${top.path} nor base ${base.path}`));
  }
  // A run whose rebase failed took the mark off top: top is marked again before its child leaves it.
  await retireTop(context);
  const brokenBefore = new Set(bitmapsOf(before.info).filter(isInUse).map((b) => b.name));
  try {
    await rebaseUnsafe(child.path, child.backingAfter, child.backingFormatAfter ?? 'qcow2');
  } catch (error) {
    return undoRebase(child, top, asVolmergeError(error));
  }
  const after = await readBacking(child.path);
  if (after.backing !== base.realPath) {
    const cause = new VolmergeError('verify-failed', `child ${child.path}: after qemu-img rebase its backing file ${after.info['backing-filename'] ?? '(none)'} is not base ${base.path}`);
    return undoRebase(child, top, cause);
  }
  const broken = bitmapsOf(after.info).filter((b) => isInUse(b) && !brokenBefore.has(b.name)).map((b) => b.name);
  if (broken.length > 0) {
    throw new VolmergeError('bitmap-write-failed', `child ${child.path}: after qemu-img rebase, bitmap ${broken.join(', ')} is in-use; it is backed by base now and its data is intact, but those bitmaps are lost`);
  }
  return { rebased: true, backing: child.backingAfter };
}

/** The rebase step. */
export const rebaseStep: Step<MergeContext> = {
  name: 'rebase',
  journaling: (context) => (context.plan.finalize?.child ? 'durable' : 'idle'),
  async run(context) {
    const child = context.plan.finalize?.child;
    return child ? rebaseChild(context, child) : { rebased: false };
  },
};
