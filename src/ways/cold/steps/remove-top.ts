// Step remove-top: removes top (lvremove, or unlink with its sidecars) at the very end, once no volume is backed by it
// and no process holds it. Top already gone counts as removed: the job may have removed it before a crash.
import { lstat, realpath } from 'node:fs/promises';
import type { Step } from '../../../engine/step.js';
import { VolmergeError } from '../../../errors.js';
import { candidateVolumes, childrenAmong } from '../../../merge/children.js';
import { removeDurable } from '../../../os/atomic-file.js';
import { readInfo } from '../../../qemu/queries.js';
import { GENERATION_SIDECAR_SUFFIX } from '../../../storage/generation.js';
import { fileIdentity } from '../../../storage/identify.js';
import { readLv, removeLv } from '../../../storage/lvm.js';
import { RETIRED_SIDECAR_SUFFIX } from '../../../storage/marks.js';
import { compareVolumes } from '../../../storage/same-volume.js';
import { formatLvIdentity } from '../../../storage/volume-identity.js';
import { openPath, type MergeContext } from './context.js';
import type { MergeVolume } from '../../../merge/merge-volume.js';

/** Whether top is still there: false only when a query that succeeded says it is gone; another file under its name is refused. */
async function topStillThere(top: MergeVolume): Promise<boolean> {
  if (top.lv) {
    let lv;
    try {
      lv = await readLv(top.lv.vg, top.lv.name);
    } catch (error) {
      if (error instanceof VolmergeError && (error.code === 'lv-missing' || error.code === 'vg-missing')) return false;
      throw error;
    }
    const sameness = compareVolumes({ identity: top.identity }, { identity: formatLvIdentity(lv.vg, lv.name, lv.uuid), realPath: top.realPath });
    if (sameness.verdict === 'other') throw new VolmergeError('bad-chain', `top ${top.path}: ${top.lv.vg}/${top.lv.name} is another LV now, not the one merged (${sameness.reason}); it was not removed`);
    return true;
  }
  let facts;
  try {
    facts = await lstat(top.realPath, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new VolmergeError('qemu-failed', `top ${top.path}: cannot tell whether it is still there: ${(error as Error).message}; not removed`);
  }
  const sameness = compareVolumes({ identity: top.identity, realPath: top.realPath }, { identity: await fileIdentity(top.realPath, facts), realPath: top.realPath });
  if (sameness.verdict === 'other') {
    throw new VolmergeError('bad-chain', `top ${top.path}: ${top.realPath} is another file now, not the one merged (${sameness.reason}); it was not removed`);
  }
  return true;
}

/** Removes top once no volume is backed by it and no process holds it. */
async function removeTop(top: MergeVolume): Promise<Record<string, unknown>> {
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

/** The remove-top step. */
export const removeTopStep: Step<MergeContext> = {
  name: 'remove-top',
  journaling: (context) => (context.plan.finalize?.removeTop ? 'durable' : 'idle'),
  async run(context) {
    return context.plan.finalize?.removeTop ? removeTop(context.volumes.top) : { removed: false };
  },
};
