// Volume.getInfo's params under either naming: volmerge's {sd_id, img_id, vol_id} or vdsm's own {storagedomainID,
// imageID, volumeID} (vdsm's storagepoolID is accepted and not needed: a host serves one pool).
import { VolmergeError } from '../errors.js';
import type { VolumeAddress } from './address.js';

/** The params as rpc-params-volume-get-info.schema.json lets them through. */
export interface VolumeInfoParams {
  sd_id?: string;
  img_id?: string;
  vol_id?: string;
  storagedomainID?: string;
  imageID?: string;
  volumeID?: string;
  storagepoolID?: string;
}

/** Each address field and vdsm's name for it. */
const NAMES = [
  ['sd_id', 'storagedomainID'],
  ['img_id', 'imageID'],
  ['vol_id', 'volumeID'],
] as const;

/** The volume's address; a field given under both names must say the same, and each must be given under one of them. */
export function volumeInfoParams(raw: Record<string, unknown>): VolumeAddress {
  const params = raw as VolumeInfoParams;
  const address: Partial<VolumeAddress> = {};
  for (const [ours, vdsms] of NAMES) {
    const mine = params[ours];
    const theirs = params[vdsms];
    if (mine !== undefined && theirs !== undefined && mine !== theirs) {
      throw new VolmergeError('usage', `${ours} "${mine.slice(0, 64)}" and ${vdsms} "${theirs.slice(0, 64)}" name different volumes; give one of them`);
    }
    const value = mine ?? theirs;
    if (value === undefined) throw new VolmergeError('usage', `Volume.getInfo needs ${ours} (or vdsm's ${vdsms})`);
    address[ours] = value;
  }
  return address as VolumeAddress;
}
