// Reads what the kernel says of a block device from /sys, without running anything.
import { readFile } from 'node:fs/promises';

/** What /sys/dev/block/MAJ:MIN tells of one block device. */
export interface BlockDeviceFacts {
  major: number;
  minor: number;
  sizeBytes: number;
  /** device-mapper uuid; LVM's start with "LVM-". */
  dmUuid?: string;
  /** device-mapper name, e.g. "vg-lv". */
  dmName?: string;
}

/** Major and minor numbers of a st_rdev (Linux encoding). */
export function splitRdev(rdev: number): { major: number; minor: number } {
  const major = Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);
  return { major, minor };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Reads size and device-mapper identity of the block device with this st_rdev. */
export async function readBlockDevice(rdev: number): Promise<BlockDeviceFacts> {
  const { major, minor } = splitRdev(rdev);
  const dir = `/sys/dev/block/${major}:${minor}`;
  const sectors = await readFile(`${dir}/size`, 'utf8');
  const facts: BlockDeviceFacts = { major, minor, sizeBytes: Number(sectors.trim()) * 512 };
  const dmUuid = await readOptional(`${dir}/dm/uuid`);
  const dmName = await readOptional(`${dir}/dm/name`);
  if (dmUuid !== undefined) facts.dmUuid = dmUuid;
  if (dmName !== undefined) facts.dmName = dmName;
  return facts;
}

/** Whether a device-mapper uuid is one of LVM's logical volumes. */
export function isLvmUuid(dmUuid: string | undefined): boolean {
  return dmUuid !== undefined && dmUuid.startsWith('LVM-');
}
