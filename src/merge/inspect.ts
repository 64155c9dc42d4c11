// Step 1: resolve both volumes and prove that top is really backed by base (resolved paths, not strings).
import { realpath } from 'node:fs/promises';
import { VolmergeError } from '../errors.js';
import { readChain } from '../qemu/queries.js';
import type { ImageInfo } from '../qemu/types.js';
import { resolveVolume, type Volume } from '../storage/volume.js';

/** What inspection found. */
export interface Inspection {
  top: Volume;
  base: Volume;
  topInfo: ImageInfo;
  baseInfo: ImageInfo;
}

async function realpathOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

/** Resolves top and base (they exist, and are two volumes); the chain between them is not read yet. */
export async function resolveChainVolumes(topPath: string, basePath: string): Promise<{ top: Volume; base: Volume }> {
  const top = await resolveVolume(topPath, 'top');
  const base = await resolveVolume(basePath, 'base');
  if (top.realPath === base.realPath) {
    throw new VolmergeError('bad-chain', `top ${topPath} and base ${basePath} are the same volume; give top's backing volume as base`);
  }
  return { top, base };
}

/** Resolves top and base and checks the chain top -> base; throws a refusal that names the volume otherwise. */
export async function inspectChain(topPath: string, basePath: string): Promise<Inspection> {
  const { top, base } = await resolveChainVolumes(topPath, basePath);
  return inspectResolved(top, base);
}

/** Checks the chain top -> base of two resolved volumes with one qemu-img info --backing-chain. */
export async function inspectResolved(top: Volume, base: Volume): Promise<Inspection> {
  const topPath = top.path;
  const basePath = base.path;
  const chain = await readChain(top.realPath);
  const [topInfo, backingInfo] = chain;
  if (!topInfo) throw new VolmergeError('bad-output', `qemu-img info --backing-chain ${topPath} returned no image`);
  if (topInfo.format !== 'qcow2') throw new VolmergeError('not-qcow2', `top ${topPath} is ${topInfo.format}, not qcow2`);
  const backingName = topInfo['full-backing-filename'] ?? topInfo['backing-filename'];
  if (!backingName || !backingInfo) {
    throw new VolmergeError('bad-chain', `top ${topPath} has no backing volume, so it is not backed by base ${basePath} (are top and base swapped?)`);
  }
  const backingReal = await realpathOrUndefined(backingName);
  if (backingReal !== base.realPath) {
    throw new VolmergeError(
      'bad-chain',
      `top ${topPath} is backed by ${backingName}, not by base ${basePath}; give the volume right below top as base`,
    );
  }
  if (backingInfo.format !== 'qcow2') throw new VolmergeError('not-qcow2', `base ${basePath} is ${backingInfo.format}, not qcow2`);
  return { top, base, topInfo, baseInfo: backingInfo };
}
