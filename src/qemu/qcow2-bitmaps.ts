// Reads a qcow2 image's persistent bitmaps as they are on disk (names, granularity, in-use and auto flags) straight from
// its header and bitmap directory, the way qemu loads them, without starting a qemu-img: the re-reads that prove a step
// left no bitmap in-use cost a file read instead of a process. Entries are checked as qemu checks them; an image whose
// directory qemu would refuse is refused here too.
import { VolmergeError } from '../errors.js';
import { readRange } from '../os/read-range.js';
import { HeaderError, parseQcow2Header } from './qcow2-header.js';
import { readHeaderBytes } from './qcow2-header-bytes.js';
import type { BitmapInfo } from './types.js';

/** qemu's limits: 65535 bitmaps of at most 1023-byte names, so a directory of at most 64 MiB. */
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;
const ENTRY_HEADER_BYTES = 24;
const FLAG_IN_USE = 1;
const FLAG_AUTO = 2;
const KNOWN_FLAGS = FLAG_IN_USE | FLAG_AUTO;
const TYPE_DIRTY_TRACKING = 1;

/** Parses a bitmap directory of count entries; throws HeaderError where qemu's bitmap_list_load would fail. */
export function parseBitmapDirectory(directory: Buffer, count: number, clusterSize: number): BitmapInfo[] {
  const bitmaps: BitmapInfo[] = [];
  let offset = 0;
  for (let i = 0; i < count; i += 1) {
    if (offset + ENTRY_HEADER_BYTES > directory.length) throw new HeaderError(`bitmap directory entry ${i} runs past the directory`);
    const tableOffset = directory.readBigUInt64BE(offset);
    const flags = directory.readUInt32BE(offset + 12);
    const type = directory.readUInt8(offset + 16);
    const granularityBits = directory.readUInt8(offset + 17);
    const nameSize = directory.readUInt16BE(offset + 18);
    const extraDataSize = directory.readUInt32BE(offset + 20);
    if (type !== TYPE_DIRTY_TRACKING) throw new HeaderError(`bitmap directory entry ${i} has type ${type}`);
    if (granularityBits < 9 || granularityBits > 31) throw new HeaderError(`bitmap directory entry ${i} has granularity bits ${granularityBits}`);
    if ((flags & ~KNOWN_FLAGS) !== 0) throw new HeaderError(`bitmap directory entry ${i} has unknown flags 0x${flags.toString(16)}`);
    if (extraDataSize !== 0) throw new HeaderError(`bitmap directory entry ${i} carries extra data`);
    if (nameSize === 0 || nameSize > 1023) throw new HeaderError(`bitmap directory entry ${i} has a name of ${nameSize} bytes`);
    if (tableOffset % BigInt(clusterSize) !== 0n) throw new HeaderError(`bitmap directory entry ${i}: its table is not cluster-aligned`);
    const nameStart = offset + ENTRY_HEADER_BYTES;
    if (nameStart + nameSize > directory.length) throw new HeaderError(`bitmap directory entry ${i}: its name runs past the directory`);
    const name = new TextDecoder('utf-8', { fatal: true }).decode(directory.subarray(nameStart, nameStart + nameSize));
    const shown: BitmapInfo['flags'] = [];
    if (flags & FLAG_IN_USE) shown.push('in-use');
    if (flags & FLAG_AUTO) shown.push('auto');
    bitmaps.push({ name, granularity: 2 ** granularityBits, flags: shown });
    offset = Math.ceil((nameStart + nameSize) / 8) * 8;
  }
  if (offset !== directory.length) throw new HeaderError(`the bitmap directory holds ${directory.length} bytes, its ${count} entries ${offset}`);
  return bitmaps;
}

/**
 * The persistent bitmaps of a qcow2 image on disk, in directory order, as `qemu-img info` lists them: none when the
 * bitmaps extension is absent or its autoclear bit is off (qemu then ignores it). Read through the page cache, as
 * qemu-img reads; call it only when no process has the image open read-write.
 */
export async function readDiskBitmaps(path: string, role: string): Promise<BitmapInfo[]> {
  try {
    const header = parseQcow2Header(await readHeaderBytes(path));
    const location = header.bitmapDirectory;
    if (!location || !header.bitmapsAutoclear || location.count === 0) return [];
    if (location.size > MAX_DIRECTORY_BYTES || location.offset % header.clusterSize !== 0) {
      throw new HeaderError(`the bitmap directory (${location.size} bytes at ${location.offset}) is out of qemu's bounds`);
    }
    const directory = await readRange(path, location.offset, location.size);
    if (directory.length !== location.size) throw new HeaderError('the bitmap directory lies beyond the end of the image');
    return parseBitmapDirectory(directory, location.count, header.clusterSize);
  } catch (error) {
    if (error instanceof HeaderError || error instanceof TypeError) {
      throw new VolmergeError('verify-failed', `${role} ${path}: its bitmap directory cannot be read (${error.message}); check it with qemu-img info before using it`);
    }
    throw new VolmergeError('qemu-failed', `${role} ${path}: cannot read its bitmaps: ${(error as Error).message}`);
  }
}
