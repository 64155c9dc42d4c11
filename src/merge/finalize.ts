// The end of a merge, after verify (design.md step 9): retire top, rebase its child onto base, shrink the base LV,
// remove top. Each step probes the real state before it acts, so a resumed job may run it again; each does nothing unless asked.
import { lstat, realpath } from 'node:fs/promises';
import { VolmergeError, asVolmergeError } from '../errors.js';
import { removeDurable } from '../jobs/atomic-file.js';
import { log } from '../log.js';
import { rebaseUnsafe } from '../qemu/mutations.js';
import { checkImage, readInfo } from '../qemu/queries.js';
import { bitmapsOf, isInUse } from '../qemu/types.js';
import { GENERATION_SIDECAR_SUFFIX } from '../storage/generation.js';
import { readLv, reduceLv, removeLv } from '../storage/lvm.js';
import { RETIRED_SIDECAR_SUFFIX } from '../storage/marks.js';
import type { VolumeKind } from '../storage/volume.js';
import { candidateVolumes, childrenAmong, readBacking } from './children.js';
import type { FinalizeChild } from './finalize-plan.js';
import type { CrashSafety, MergeRequest } from './pipeline.js';
import type { MergePlan } from './plan.js';
import { runStep } from './run-step.js';
import { roundUp } from './sizes.js';

/** A volume as the end of a merge needs it: a resolved Volume, or a journal's record of one (top, once it may be gone). */
export interface FinalizeVolume {
  kind: VolumeKind;
  path: string;
  realPath: string;
  identity: string;
  lv?: { vg: string; name: string } | undefined;
}

/** Top and base of the merge being finished. */
export interface FinalizeVolumes {
  top: FinalizeVolume;
  base: FinalizeVolume;
}

/** The path that opens a volume now: /dev/VG/LV for an LV (its /dev/dm-N may change across a reboot), the real path otherwise. */
function openPath(volume: FinalizeVolume): string {
  return volume.lv ? `/dev/${volume.lv.vg}/${volume.lv.name}` : volume.realPath;
}

/**
 * After a rebase that failed or could not be verified: puts the child's backing back on top when it is not there, and
 * only once the chain child -> top -> base is confirmed takes the retired mark off top and forgets the retire step.
 */
async function undoRebase(request: MergeRequest, child: FinalizeChild, top: FinalizeVolume, safety: CrashSafety | undefined, cause: VolmergeError): Promise<never> {
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
  await safety?.unretireTop?.(top);
  await request.hooks?.forget?.('retire');
  throw new VolmergeError(
    cause.code === 'busy' ? 'busy' : 'rebase-failed',
    `${cause.message}; child ${child.path} still reads through top ${top.path}, which is no longer marked: fix the cause and run the merge again`,
    cause.details,
  );
}

/** Points the child at base (qemu-img rebase -u) and verifies it with qemu-img info; on failure the chain is left as it was. */
async function rebaseChild(request: MergeRequest, child: FinalizeChild, volumes: FinalizeVolumes, safety: CrashSafety | undefined): Promise<Record<string, unknown>> {
  const { top, base } = volumes;
  const before = await readBacking(child.path);
  if (before.backing === base.realPath) return { rebased: true, already: true, backing: before.info['backing-filename'] ?? null };
  if (before.backing !== top.realPath) {
    const cause = new VolmergeError('bad-chain', `child ${child.path} is backed by ${before.info['backing-filename'] ?? 'nothing'} now, neither top ${top.path} nor base ${base.path}`);
    await safety?.unretireTop?.(top);
    await request.hooks?.forget?.('retire');
    throw cause;
  }
  // A run whose rebase failed took the mark off top: top is marked again before its child leaves it.
  await safety?.retireTop?.(top);
  const brokenBefore = new Set(bitmapsOf(before.info).filter(isInUse).map((b) => b.name));
  try {
    await rebaseUnsafe(child.path, child.backingAfter, child.backingFormatAfter ?? 'qcow2');
  } catch (error) {
    return undoRebase(request, child, top, safety, asVolmergeError(error));
  }
  const after = await readBacking(child.path);
  if (after.backing !== base.realPath) {
    const cause = new VolmergeError('verify-failed', `child ${child.path}: after qemu-img rebase its backing file ${after.info['backing-filename'] ?? '(none)'} is not base ${base.path}`);
    return undoRebase(request, child, top, safety, cause);
  }
  const broken = bitmapsOf(after.info).filter((b) => isInUse(b) && !brokenBefore.has(b.name)).map((b) => b.name);
  if (broken.length > 0) {
    throw new VolmergeError('bitmap-write-failed', `child ${child.path}: after qemu-img rebase, bitmap ${broken.join(', ')} is in-use; it is backed by base now and its data is intact, but those bitmaps are lost`);
  }
  return { rebased: true, backing: child.backingAfter };
}

/** Reduces the base LV to image-end-offset (+ leaf room) in whole extents; never grows it, never below what the image uses. */
async function shrinkBase(base: FinalizeVolume, leafRoom: number, extentSize: number): Promise<Record<string, unknown>> {
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

/** Whether top is still there: false only when a query that succeeded says it is gone; another file under its name is refused. */
async function topStillThere(top: FinalizeVolume): Promise<boolean> {
  if (top.lv) {
    try {
      await readLv(top.lv.vg, top.lv.name);
      return true;
    } catch (error) {
      if (error instanceof VolmergeError && (error.code === 'lv-missing' || error.code === 'vg-missing')) return false;
      throw error;
    }
  }
  let facts;
  try {
    facts = await lstat(top.realPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new VolmergeError('qemu-failed', `top ${top.path}: cannot tell whether it is still there: ${(error as Error).message}; not removed`);
  }
  if (`file:${facts.dev}:${facts.ino}` !== top.identity) {
    throw new VolmergeError('bad-chain', `top ${top.path}: ${top.realPath} is another file now (not the one merged); it was not removed`);
  }
  return true;
}

/** Removes top (lvremove or unlink, with its sidecars) once no volume is backed by it and no process holds it. */
async function removeTop(top: FinalizeVolume): Promise<Record<string, unknown>> {
  if (top.kind === 'block') throw new VolmergeError('unsupported', `top ${top.path} is a plain block device: volmerge removes only LVs and files`);
  if (!(await topStillThere(top))) return { removed: true, already: true };
  const path = openPath(top);
  const real = await realpath(path);
  const children = await childrenAmong(await candidateVolumes({ kind: top.kind, realPath: real, ...(top.lv ? { lv: top.lv } : {}) }), real);
  if (children.length > 0) {
    throw new VolmergeError('bad-chain', `top ${top.path} was not removed: ${children.join(', ')} ${children.length === 1 ? 'is' : 'are'} backed by it`);
  }
  // Fails with 'busy' while a process holds the image.
  await readInfo(path);
  if (top.lv) {
    await removeLv(top.lv.vg, top.lv.name);
    return { removed: true, lv: `${top.lv.vg}/${top.lv.name}` };
  }
  await removeDurable(top.realPath);
  for (const sidecar of new Set([`${top.realPath}${RETIRED_SIDECAR_SUFFIX}`, `${top.realPath}${GENERATION_SIDECAR_SUFFIX}`, `${top.path}${GENERATION_SIDECAR_SUFFIX}`])) {
    await removeDurable(sidecar);
  }
  return { removed: true, file: top.realPath };
}

/** Runs the end-of-merge steps (retire, rebase, shrink, remove-top) of a verified merge; each does nothing unless the plan asks. */
export async function runFinalizeSteps(request: MergeRequest, volumes: FinalizeVolumes, plan: MergePlan, safety?: CrashSafety): Promise<void> {
  const end = plan.finalize;
  const { top, base } = volumes;

  await runStep(request, 'retire', async () => {
    if (!end?.retireTop || !safety?.retireTop) return { retired: false };
    return { retired: true, ...(await safety.retireTop(top)) };
  }, { changesNothing: !end?.retireTop || !safety?.retireTop });

  await runStep(request, 'rebase', async () => (end?.child ? rebaseChild(request, end.child, volumes, safety) : { rebased: false }), {
    changesNothing: !end?.child,
  });

  await runStep(request, 'shrink', async () => {
    const shrink = end?.shrink;
    if (!shrink) return { shrunk: false };
    if (!shrink.planned) return { shrunk: false, reason: shrink.reason };
    return shrinkBase(base, shrink.leafRoom, shrink.extentSize);
  }, { changesNothing: end?.shrink?.planned !== true });

  await runStep(request, 'remove-top', async () => (end?.removeTop ? removeTop(top) : { removed: false }), { changesNothing: !end?.removeTop });
}
