// qemu-img queries: info, measure, check; every JSON is schema-checked before it is believed.
import { parseAgainst } from '../schema.js';
import { failIfCorrupt, failIfExited, runQemuImg } from './qemu-img.js';
import type { CheckInfo, ImageInfo, MeasureInfo } from './types.js';

/** The qemu block driver that opens a volume: 'file' for regular files, 'host_device' for block devices. */
export type ProtocolDriver = 'file' | 'host_device';

/** qemu-img info of one image (qcow2 unless format says raw); forceShare (-U) reads an image that a running process holds, without its lock. */
export async function readInfo(path: string, options: { forceShare?: boolean; format?: 'qcow2' | 'raw' } = {}): Promise<ImageInfo> {
  const result = await runQemuImg(['info', '--output', 'json', ...(options.forceShare ? ['-U'] : []), '-f', options.format ?? 'qcow2', path]);
  failIfExited(result, path, 'info');
  return parseAgainst<ImageInfo>('qemu-img-info.schema.json', result.stdout, `qemu-img info ${path}`);
}

/** Options of the read-only queries; forceShare (-U) reads images that a running VM holds, without their locks. */
export interface ReadOptions {
  forceShare?: boolean;
}

/** qemu-img info --backing-chain of a qcow2 image: the image first, then each backing file. */
export async function readChain(path: string, options: ReadOptions = {}): Promise<ImageInfo[]> {
  const result = await runQemuImg(['info', '--output', 'json', '--backing-chain', ...(options.forceShare ? ['-U'] : []), '-f', 'qcow2', path]);
  failIfExited(result, path, 'info --backing-chain');
  return parseAgainst<ImageInfo[]>('qemu-img-info-chain.schema.json', result.stdout, `qemu-img info --backing-chain ${path}`);
}

/** The json: filename that opens top over base with nothing behind base (read-only without locks when forceShare). */
export function subchainFilename(top: string, topDriver: ProtocolDriver, base: string, baseDriver: ProtocolDriver, options: ReadOptions = {}): string {
  const shared = options.forceShare ? { 'read-only': true, 'force-share': true } : {};
  const spec = {
    driver: 'qcow2',
    ...shared,
    file: { driver: topDriver, filename: top },
    backing: { driver: 'qcow2', ...shared, file: { driver: baseDriver, filename: base }, backing: null },
  };
  return `json:${JSON.stringify(spec)}`;
}

/**
 * qemu-img measure of the sub-chain top -> base (a qcow2 base) as one qcow2 laid out with targetOptions (-o: base's
 * own cluster size, extended L2, refcount bits...; measure assumes qemu's defaults otherwise): what base's data and
 * metadata take after the commit.
 */
export async function measureSubchain(
  top: string,
  topDriver: ProtocolDriver,
  base: string,
  baseDriver: ProtocolDriver,
  targetOptions?: string,
  read: ReadOptions = {},
): Promise<MeasureInfo> {
  const options = targetOptions ? ['-o', targetOptions] : [];
  const result = await runQemuImg(['measure', '--output', 'json', '-O', 'qcow2', ...options, subchainFilename(top, topDriver, base, baseDriver, read)]);
  failIfExited(result, top, 'measure');
  return parseAgainst<MeasureInfo>('qemu-img-measure.schema.json', result.stdout, `qemu-img measure ${top}`);
}

/** qemu-img check; exit 0 (clean) and 3 (leaked clusters only) are accepted, corruption is an error. */
export async function checkImage(path: string, options: ReadOptions = {}): Promise<CheckInfo> {
  const result = await runQemuImg(['check', '--output', 'json', ...(options.forceShare ? ['-U'] : []), '-f', 'qcow2', path]);
  failIfCorrupt(result, path);
  if (result.exitCode !== 3) failIfExited(result, path, 'check');
  return parseAgainst<CheckInfo>('qemu-img-check.schema.json', result.stdout, `qemu-img check ${path}`);
}
