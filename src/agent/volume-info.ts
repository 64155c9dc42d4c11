// Volume.getInfo: one volume as vdsm describes it (uuid, domain, image, parent, format, sizes, legality, generation),
// plus its bitmaps. The header is read with an explicit format and -U, since a running VM may hold the volume.
import { open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { VolmergeError } from '../errors.js';
import { readInfo } from '../qemu/queries.js';
import { bitmapsOf, type BitmapInfo } from '../qemu/types.js';
import { generationFromTags, readGeneration } from '../storage/generation.js';
import { fileIdentity } from '../storage/identify.js';
import { markHolderFor, readMark, RETIRED_TAG_PREFIX } from '../storage/marks.js';
import { staleMarkReason } from '../storage/stale-mark.js';
import { resolveVolumeAddress, type AddressContext, type ResolvedVolume, type VolumeAddress } from './address.js';

/** vdsm's id of "no volume" (a volume without a parent). */
export const BLANK_UUID = '00000000-0000-0000-0000-000000000000';

/** The first bytes of every qcow2 image: "QFI" and 0xfb. */
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/** Volume.getInfo's result (rpc-result-volume-get-info.schema.json): vdsm's VolumeInfo fields, plus bitmaps. */
export interface VolumeInfoView {
  uuid: string;
  domain: string;
  image: string;
  parent: string;
  format: 'COW' | 'RAW';
  capacity: number;
  apparentsize: number;
  truesize: number;
  legality: 'LEGAL' | 'ILLEGAL';
  /** vdsm's VolumeStatus: ILLEGAL when legality is, OK otherwise (the engine reads it). */
  status: 'OK' | 'ILLEGAL';
  generation: number;
  bitmaps: BitmapInfo[];
}

/** Whether the volume starts with qcow2's magic (qemu-img is then told -f qcow2; anything else is raw, never probed). */
async function isQcow2(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(QCOW2_MAGIC.length);
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.equals(QCOW2_MAGIC);
  } finally {
    await file.close();
  }
}

/** The parent's volume id: top's backing file must be a volume beside it (same image folder, or same VG); none is BLANK_UUID. */
export function parentId(volume: Pick<ResolvedVolume, 'path'>, backing: string | undefined, address: VolumeAddress): string {
  if (backing === undefined || backing === '') return BLANK_UUID;
  const resolved = resolve(dirname(volume.path), backing);
  if (dirname(resolved) !== dirname(volume.path) || !/^[A-Za-z0-9+_][A-Za-z0-9+_.-]{0,126}$/.test(basename(resolved))) {
    throw new VolmergeError(
      'not-in-image',
      `volume ${address.vol_id} of image ${address.img_id}: its backing file "${backing.slice(0, 200)}" is not a volume of the same image on domain ${address.sd_id}`,
    );
  }
  return basename(resolved);
}

/** apparentsize and truesize: a file's size and the space its blocks take; an LV's size for both (as vdsm reports them). */
async function sizesOf(volume: ResolvedVolume): Promise<{ apparentsize: number; truesize: number }> {
  if (volume.lv) return { apparentsize: volume.lv.sizeBytes, truesize: volume.lv.sizeBytes };
  const facts = await stat(volume.path);
  return { apparentsize: facts.size, truesize: facts.blocks * 512 };
}

/** Whether the volume is a retired top (a merged top that nothing may use): its LV tag, or its sidecar. */
async function isRetired(volume: ResolvedVolume): Promise<boolean> {
  if (volume.lv) return volume.lv.tags.some((t) => t.startsWith(RETIRED_TAG_PREFIX));
  const real = await realpath(volume.path);
  const current = { identity: await fileIdentity(real), realPath: real };
  const holder = markHolderFor({ kind: 'file', ...current }, '', 'retired');
  const mark = await readMark(holder);
  // A sidecar left by a retired top that was removed says nothing of a new file at its path.
  return mark !== undefined && staleMarkReason(mark, holder, current) === undefined;
}

/** Reads one volume's info; the volume must be inside the domain and image given, as for SDM.merge. */
export async function volumeInfo(address: VolumeAddress, context: AddressContext): Promise<VolumeInfoView> {
  const volume = await resolveVolumeAddress(address, context);
  const [sizes, qcow2, retired, generation] = await Promise.all([
    sizesOf(volume),
    isQcow2(volume.path),
    isRetired(volume),
    volume.lv ? generationFromTags(volume.lv.tags, `${volume.lv.vg}/${volume.lv.name}`) : readGeneration(volume.generation),
  ]);
  const info = qcow2 ? await readInfo(volume.path, { forceShare: true }) : undefined;
  const legality = retired ? 'ILLEGAL' : 'LEGAL';
  return {
    uuid: address.vol_id,
    domain: address.sd_id,
    image: address.img_id,
    parent: info ? parentId(volume, info['backing-filename'], address) : BLANK_UUID,
    format: info ? 'COW' : 'RAW',
    capacity: info ? info['virtual-size'] : sizes.apparentsize,
    ...sizes,
    legality,
    status: retired ? 'ILLEGAL' : 'OK',
    generation,
    bitmaps: info ? bitmapsOf(info).map((b) => ({ name: b.name, granularity: b.granularity, flags: [...b.flags] })) : [],
  };
}
