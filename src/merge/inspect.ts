// Step 1: resolve both volumes, check every header of the chain (chain-guard.ts) before qemu-img opens it, and prove
// that top is really backed by base (resolved paths, not strings); then read both with one qemu-img info.
import { VolmergeError } from '../errors.js';
import { readChain, type ReadOptions } from '../qemu/queries.js';
import type { Qcow2Header } from '../qemu/qcow2-header.js';
import type { ImageInfo } from '../qemu/types.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { guardChain, type ImageFormat } from './chain-guard.js';
import type { Qcow2Layout } from './sizes.js';

/** What the headers say of the chain top -> base, read before qemu-img opens anything. */
export interface GuardedChain {
  top: Volume;
  base: Volume;
  topHeader: Qcow2Header;
  /** qcow2 or raw, as top's header records it (never probed from base's bytes). */
  baseFormat: ImageFormat;
  /** Base's qcow2 layout; absent for a raw base. */
  baseLayout?: Qcow2Layout;
  baseVirtualSize?: number;
}

/** What inspection found. */
export interface Inspection extends GuardedChain {
  topInfo: ImageInfo;
  baseInfo: ImageInfo;
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

/** Checks the headers of the chain below top and that top's backing volume is base; changes nothing, runs no qemu-img. */
export async function guardResolved(top: Volume, base: Volume): Promise<GuardedChain> {
  const chain = await guardChain(top);
  const [topImage, below] = chain;
  if (!topImage?.header) throw new VolmergeError('internal', `top ${top.path}: its header was not read`);
  if (!below) {
    throw new VolmergeError('bad-chain', `top ${top.path} has no backing volume, so it is not backed by base ${base.path} (are top and base swapped?)`);
  }
  if (below.realPath !== base.realPath) {
    throw new VolmergeError('bad-chain', `top ${top.path} is backed by ${topImage.header.backingName ?? below.path}, not by base ${base.path}; give the volume right below top as base`);
  }
  const guarded: GuardedChain = { top, base, topHeader: topImage.header, baseFormat: below.format };
  const header = below.header;
  if (header) {
    guarded.baseVirtualSize = header.virtualSize;
    guarded.baseLayout = {
      clusterSize: header.clusterSize,
      extendedL2: header.extendedL2,
      refcountBits: header.refcountBits,
      compressionType: header.compressionType === 'zstd' ? 'zstd' : 'zlib',
      version: header.version,
    };
  }
  return guarded;
}

/** Reads top and base with one qemu-img info --backing-chain (the chain is guarded already; forceShare: a VM holds it) and checks it matches the headers. */
export async function inspectGuarded(guarded: GuardedChain, read: ReadOptions = {}): Promise<Inspection> {
  const { top, base } = guarded;
  const [topInfo, baseInfo] = await readChain(top.realPath, read);
  if (!topInfo || !baseInfo) throw new VolmergeError('bad-output', `qemu-img info --backing-chain ${top.path} did not return top and base`);
  if (topInfo.format !== 'qcow2') throw new VolmergeError('not-qcow2', `top ${top.path} is ${topInfo.format}, not qcow2`);
  if (baseInfo.format !== guarded.baseFormat) {
    throw new VolmergeError('bad-output', `base ${base.path}: qemu-img opened it as ${baseInfo.format}, but top's header records ${guarded.baseFormat}`);
  }
  return { ...guarded, topInfo, baseInfo };
}

/** Resolves top and base, guards the chain and reads it; throws a refusal that names the volume otherwise. */
export async function inspectChain(topPath: string, basePath: string): Promise<Inspection> {
  const { top, base } = await resolveChainVolumes(topPath, basePath);
  return inspectGuarded(await guardResolved(top, base));
}
