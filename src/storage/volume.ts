// Finds what kind of volume a path is (file, LV, fixed block device) and how big it is.
import { realpath, stat, statfs } from 'node:fs/promises';
import { VolmergeError } from '../errors.js';
import type { ProtocolDriver } from '../qemu/queries.js';
import { splitDmName } from './dm-name.js';
import { blockIdentity, fileIdentity } from './identify.js';
import { readLv, type LvFacts } from './lvm.js';
import { isLvmUuid, readBlockDevice } from './sysfs.js';
import { formatLvIdentity } from './volume-identity.js';

/** The three kinds of volume: a file grows by itself, an LV is extended, a plain block device cannot grow. */
export type VolumeKind = 'file' | 'lv' | 'block';

/** A resolved volume. */
export interface Volume {
  kind: VolumeKind;
  /** The path as the user gave it. */
  path: string;
  /** The path with every symlink resolved. */
  realPath: string;
  /** The qemu protocol driver that opens it. */
  driver: ProtocolDriver;
  /** Current size in bytes: the file's length, or the device's size. */
  sizeBytes: number;
  /**
   * What tells this volume from any other, ever (volume-identity.ts): a file's device, inode and birth time, an LV's
   * UUID, a loop device's backing file and offset. Its live key (liveKeyOf) keys the chain lock.
   */
  identity: string;
  /** Free bytes on the file system that holds a file. */
  fsFreeBytes?: number;
  /** The LV and its VG. */
  lv?: LvFacts;
}

/** Resolves a path ("/dev/VG/LV" works) into a Volume; 'not-found' when nothing is there. */
export async function resolveVolume(path: string, role: string): Promise<Volume> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw await explainMissingPath(path, role);
  }
  const facts = await stat(real, { bigint: true });
  if (facts.isFile()) {
    const fs = await statfs(real);
    return {
      kind: 'file',
      path,
      realPath: real,
      driver: 'file',
      sizeBytes: Number(facts.size),
      identity: await fileIdentity(real, facts),
      fsFreeBytes: fs.bavail * fs.bsize,
    };
  }
  if (!facts.isBlockDevice()) throw new VolmergeError('not-qcow2', `${role} ${path}: neither a regular file nor a block device`);
  const device = await readBlockDevice(Number(facts.rdev));
  const base = { path, realPath: real, driver: 'host_device' as const, sizeBytes: device.sizeBytes };
  if (isLvmUuid(device.dmUuid) && device.dmName) {
    const names = splitDmName(device.dmName);
    if (names) {
      const lv = await readLv(names.vg, names.lv);
      return { ...base, kind: 'lv', sizeBytes: lv.sizeBytes, identity: formatLvIdentity(lv.vg, lv.name, lv.uuid), lv };
    }
  }
  return { ...base, kind: 'block', identity: await blockIdentity(real, device.major, device.minor, device.dmUuid) };
}

/** The error for a path that does not exist; for /dev/VG/LV, lvs tells a missing LV, a missing VG and an inactive LV apart. */
async function explainMissingPath(path: string, role: string): Promise<VolmergeError> {
  const names = lvNamesOfDevPath(path);
  if (!names) return new VolmergeError('not-found', `${role} ${path}: no such file or device`);
  try {
    await readLv(names.vg, names.lv);
  } catch (error) {
    if (error instanceof VolmergeError) {
      const cause = error.message.replace(`${names.vg}/${names.lv}: `, '');
      return new VolmergeError(error.code, `${role} ${path}: ${cause}`, error.details);
    }
    throw error;
  }
  return new VolmergeError('not-found', `${role} ${path}: LV ${names.vg}/${names.lv} exists but is not active here; activate it (lvchange -ay ${names.vg}/${names.lv})`);
}

/** VG and LV of a path of the form /dev/VG/LV (not /dev/mapper, /dev/disk and other udev folders). */
export function lvNamesOfDevPath(path: string): { vg: string; lv: string } | undefined {
  const match = /^\/dev\/([^/]+)\/([^/]+)$/.exec(path);
  if (!match || !match[1] || !match[2]) return undefined;
  if (['mapper', 'disk', 'block', 'char', 'bus', 'fd', 'input', 'net', 'pts', 'shm', 'snd', 'cpu', 'dri', 'hugepages', 'mqueue', 'vfio'].includes(match[1])) {
    return undefined;
  }
  return { vg: match[1], lv: match[2] };
}

/** A short name for messages: "VG/LV" for an LV, the path otherwise. */
export function describeVolume(volume: Volume): string {
  return volume.lv ? `${volume.lv.vg}/${volume.lv.name} (${volume.path})` : volume.path;
}
