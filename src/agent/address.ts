// Turns vdsm's subchain_info (sd_id, img_id, top_id, base_id) into volume paths on a file domain or a block domain.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import type { GenerationHolder } from '../storage/generation.js';
import type { LvFacts } from '../storage/lvm.js';

/** vdsm's subchain_info, as SDM.merge receives it (ids already checked by the schema). */
export interface SubchainInfo {
  sd_id: string;
  img_id: string;
  top_id: string;
  base_id: string;
  base_generation?: number;
}

/** Where the two volumes of a subchain are, and where base's generation is kept. */
export interface ResolvedSubchain {
  domain: 'file' | 'block';
  top: string;
  base: string;
  generation: GenerationHolder;
}

/** What resolution needs from the host: the file-domain root and a way to read an LV (lvm.readLv). */
export interface AddressContext {
  /** Root of the file domains (<root>/<sd_id>/images/<img_id>/<vol_id>); undefined when the agent serves none. */
  fileDomains?: string;
  readLv: (vg: string, lv: string) => Promise<LvFacts>;
}

/** vdsm's prefix of the tag that names an LV's image. */
export const IMAGE_TAG_PREFIX = 'IU_';

/** Last line of defence behind the schema: an id is a single path component of safe characters. */
export function assertSafeId(name: string, value: string): void {
  if (!/^[A-Za-z0-9+_][A-Za-z0-9+_.-]{0,126}$/.test(value)) {
    throw new VolmergeError('usage', `${name} "${value.slice(0, 64)}" is not a valid id (a UUID, or an LVM name without "/" or a leading "." or "-")`);
  }
}

/** Whether sd_id names a file domain under the file-domain root (a folder <root>/<sd_id>/images). */
async function isFileDomain(context: AddressContext, sdId: string): Promise<boolean> {
  if (!context.fileDomains) return false;
  try {
    return (await stat(join(context.fileDomains, sdId, 'images'))).isDirectory();
  } catch {
    return false;
  }
}

/** vdsm's address of one volume: domain, image and volume id. */
export interface VolumeAddress {
  sd_id: string;
  img_id: string;
  vol_id: string;
}

/** One volume found at its address: its path, and where its generation is kept (the LV's facts on a block domain). */
export interface ResolvedVolume {
  domain: 'file' | 'block';
  path: string;
  generation: GenerationHolder;
  lv?: LvFacts;
}

/** The path of a file-domain volume, <root>/<sd_id>/images/<img_id>/<vol_id>; it must be a regular file. */
async function fileVolumePath(root: string, address: VolumeAddress, role: string): Promise<string> {
  const path = join(root, address.sd_id, 'images', address.img_id, address.vol_id);
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a regular file');
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (error as Error).message;
    throw new VolmergeError('not-found', `${role} volume ${address.vol_id} of image ${address.img_id} on domain ${address.sd_id}: ${path} ${why}`);
  }
  return path;
}

/** The file-domain paths of a subchain: <root>/<sd_id>/images/<img_id>/<vol_id>; both volumes must exist. */
export async function resolveFileSubchain(root: string, info: SubchainInfo): Promise<ResolvedSubchain> {
  const top = await fileVolumePath(root, { sd_id: info.sd_id, img_id: info.img_id, vol_id: info.top_id }, 'top');
  const base = await fileVolumePath(root, { sd_id: info.sd_id, img_id: info.img_id, vol_id: info.base_id }, 'base');
  return { domain: 'file', top, base, generation: { kind: 'file', path: base } };
}

/** Checks vdsm's IU_<img_id> tag of an LV: an LV tagged with another image is refused; an LV without one is accepted. */
export function assertLvInImage(lv: LvFacts, imgId: string, role: string): void {
  const imageTags = lv.tags.filter((t) => t.startsWith(IMAGE_TAG_PREFIX));
  if (imageTags.length === 0 || imageTags.includes(`${IMAGE_TAG_PREFIX}${imgId}`)) return;
  throw new VolmergeError(
    'not-in-image',
    `${role} volume ${lv.vg}/${lv.name} belongs to image ${imageTags.map((t) => t.slice(IMAGE_TAG_PREFIX.length)).join(', ')}, not ${imgId}; check img_id`,
  );
}

/** The block-domain paths of a subchain: VG sd_id, LVs top_id and base_id, both of image img_id (the LVM suite calls this). */
export async function resolveBlockSubchain(info: SubchainInfo, readLv: AddressContext['readLv']): Promise<ResolvedSubchain> {
  const top = await readLv(info.sd_id, info.top_id);
  const base = await readLv(info.sd_id, info.base_id);
  assertLvInImage(top, info.img_id, 'top');
  assertLvInImage(base, info.img_id, 'base');
  return {
    domain: 'block',
    top: `/dev/${info.sd_id}/${info.top_id}`,
    base: `/dev/${info.sd_id}/${info.base_id}`,
    generation: { kind: 'lv', vg: info.sd_id, lv: info.base_id },
  };
}

/** Resolves a subchain on whichever domain sd_id names: a file domain when <root>/<sd_id>/images exists, a VG otherwise. */
export async function resolveSubchain(info: SubchainInfo, context: AddressContext): Promise<ResolvedSubchain> {
  for (const key of ['sd_id', 'img_id', 'top_id', 'base_id'] as const) assertSafeId(key, info[key]);
  if (info.top_id === info.base_id) throw new VolmergeError('bad-chain', `top_id and base_id are both ${info.top_id}; base must be the volume below top`);
  if (context.fileDomains && (await isFileDomain(context, info.sd_id))) return resolveFileSubchain(context.fileDomains, info);
  return resolveBlockSubchain(info, context.readLv);
}

/** Resolves one volume as SDM.merge resolves top and base (same id rules, same domains); an LV must be active here. */
export async function resolveVolumeAddress(address: VolumeAddress, context: AddressContext): Promise<ResolvedVolume> {
  for (const key of ['sd_id', 'img_id', 'vol_id'] as const) assertSafeId(key, address[key]);
  if (context.fileDomains && (await isFileDomain(context, address.sd_id))) {
    const path = await fileVolumePath(context.fileDomains, address, 'the');
    return { domain: 'file', path, generation: { kind: 'file', path } };
  }
  const lv = await context.readLv(address.sd_id, address.vol_id);
  assertLvInImage(lv, address.img_id, 'the');
  if (lv.activeLocally === false) {
    throw new VolmergeError('not-found', `volume ${lv.vg}/${lv.name} is not active on this host; activate it (lvchange -ay ${lv.vg}/${lv.name}) to read its header`);
  }
  return { domain: 'block', path: `/dev/${lv.vg}/${lv.name}`, generation: { kind: 'lv', vg: lv.vg, lv: lv.name }, lv };
}
