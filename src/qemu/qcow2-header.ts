// Parses a qcow2 header (version 2 or 3) and its extensions from the image's first bytes, without qemu: an image is
// untrusted input, so volmerge reads what it names (backing file, data file, encryption) before any qemu-img opens it.

/** The qcow2 magic, "QFI\xfb". */
export const QCOW2_MAGIC = 0x514649fb;
/** The most of an image a header can span: qemu keeps the header, its extensions and the backing name in the first cluster (at most 2 MiB). */
export const MAX_HEADER_BYTES = 2 * 1024 * 1024;

const EXT_END = 0x00000000;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_BITMAPS = 0x23852875;
const EXT_CRYPTO = 0x0537be77;
const EXT_DATA_FILE = 0x44415441;

/** Incompatible feature bits of qcow2 version 3. */
export const INCOMPATIBLE = { dirty: 0, corrupt: 1, dataFile: 2, compressionType: 3, extendedL2: 4 } as const;
const KNOWN_INCOMPATIBLE_MASK = 0b11111n;

/** What volmerge needs to know of a qcow2 header. */
export interface Qcow2Header {
  version: 2 | 3;
  clusterSize: number;
  virtualSize: number;
  /** 0: none; 1: AES; 2: LUKS. */
  cryptMethod: number;
  /** The backing file name as the header holds it; null when the image has no backing file. */
  backingName: string | null;
  /** The backing format extension ("qcow2", "raw"...); null when the header records none. */
  backingFormat: string | null;
  /** The external data file extension's name, or null; dataFileBit says whether the feature bit is set. */
  dataFileName: string | null;
  dataFileBit: boolean;
  /** Whether the header carries the encryption extension. */
  cryptoExtension: boolean;
  corrupt: boolean;
  extendedL2: boolean;
  /** Bits of 2^refcountOrder per refcount (16 by default; always 16 in version 2). */
  refcountBits: number;
  compressionType: 'zlib' | 'zstd' | 'unknown';
  /** Incompatible feature bits that volmerge does not know (non-zero: qemu's own meaning is unknown to us). */
  unknownIncompatible: bigint;
  hasBitmapsExtension: boolean;
  /** Where the bitmap directory is, as the bitmaps extension says; null without the extension. */
  bitmapDirectory: BitmapDirectoryLocation | null;
  /** Autoclear bit 0: qemu trusts the bitmaps extension only while it is set (version 3; always false in version 2). */
  bitmapsAutoclear: boolean;
  l1Size: number;
}

/** The bitmaps extension's payload: how many bitmaps, and the directory's offset and size in bytes. */
export interface BitmapDirectoryLocation {
  count: number;
  offset: number;
  size: number;
}

/** Why a buffer is not a usable qcow2 header. */
export class HeaderError extends Error {}

function u32(buffer: Buffer, offset: number): number {
  if (offset + 4 > buffer.length) throw new HeaderError(`header truncated at byte ${offset}`);
  return buffer.readUInt32BE(offset);
}

function u64(buffer: Buffer, offset: number): bigint {
  if (offset + 8 > buffer.length) throw new HeaderError(`header truncated at byte ${offset}`);
  return buffer.readBigUInt64BE(offset);
}

function safeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new HeaderError(`${what} ${value} is out of range`);
  return Number(value);
}

/** A printable name: UTF-8 without control characters (NUL included), else a HeaderError. */
function readName(buffer: Buffer, offset: number, length: number, what: string): string {
  if (offset + length > buffer.length) throw new HeaderError(`${what} at byte ${offset} (${length} bytes) lies beyond the header read`);
  const bytes = buffer.subarray(offset, offset + length);
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes, { stream: false });
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) throw new HeaderError(`${what} holds control characters`);
  return text;
}

/** Whether a buffer starts with the qcow2 magic. */
export function hasQcow2Magic(buffer: Buffer): boolean {
  return buffer.length >= 4 && buffer.readUInt32BE(0) === QCOW2_MAGIC;
}

interface Extensions {
  backingFormat: string | null;
  dataFileName: string | null;
  crypto: boolean;
  bitmaps: BitmapDirectoryLocation | null;
}

/** The bitmaps extension's 24 bytes: nb_bitmaps, reserved (zero), directory size, directory offset. */
function readBitmapsExtension(buffer: Buffer, data: number, length: number): BitmapDirectoryLocation {
  if (length < 24) throw new HeaderError(`the bitmaps extension holds ${length} bytes, not 24`);
  return { count: u32(buffer, data), size: safeNumber(u64(buffer, data + 8), 'bitmap directory size'), offset: safeNumber(u64(buffer, data + 16), 'bitmap directory offset') };
}

/** Walks the header extensions from offset until the end marker. */
function readExtensions(buffer: Buffer, start: number, limit: number): Extensions {
  const found: Extensions = { backingFormat: null, dataFileName: null, crypto: false, bitmaps: null };
  let offset = start;
  for (let count = 0; count < 1024; count += 1) {
    if (offset + 8 > limit) throw new HeaderError('header extensions run past the first cluster');
    const type = u32(buffer, offset);
    const length = u32(buffer, offset + 4);
    if (type === EXT_END) return found;
    const data = offset + 8;
    if (data + length > limit) throw new HeaderError(`header extension 0x${type.toString(16)} runs past the first cluster`);
    if (type === EXT_BACKING_FORMAT) found.backingFormat = readName(buffer, data, length, 'the backing format');
    else if (type === EXT_DATA_FILE) found.dataFileName = readName(buffer, data, length, 'the data file name');
    else if (type === EXT_CRYPTO) found.crypto = true;
    else if (type === EXT_BITMAPS) found.bitmaps = readBitmapsExtension(buffer, data, length);
    offset = data + Math.ceil(length / 8) * 8;
  }
  throw new HeaderError('too many header extensions');
}

/** The cluster size a header declares (to know how much of the image to read), or undefined when it is not qcow2. */
export function declaredClusterSize(buffer: Buffer): number | undefined {
  if (!hasQcow2Magic(buffer) || buffer.length < 24) return undefined;
  const bits = buffer.readUInt32BE(20);
  return bits >= 9 && bits <= 21 ? 2 ** bits : undefined;
}

/** Parses a qcow2 header from the image's first cluster (or all of a smaller image); throws HeaderError. */
export function parseQcow2Header(buffer: Buffer): Qcow2Header {
  if (!hasQcow2Magic(buffer)) throw new HeaderError('no qcow2 magic');
  const version = u32(buffer, 4);
  if (version !== 2 && version !== 3) throw new HeaderError(`qcow2 version ${version} (volmerge knows 2 and 3)`);
  const backingOffset = safeNumber(u64(buffer, 8), 'backing file offset');
  const backingSize = u32(buffer, 16);
  const clusterBits = u32(buffer, 20);
  if (clusterBits < 9 || clusterBits > 21) throw new HeaderError(`cluster_bits ${clusterBits} is out of qcow2's range 9-21`);
  const clusterSize = 2 ** clusterBits;
  const virtualSize = safeNumber(u64(buffer, 24), 'virtual size');
  const cryptMethod = u32(buffer, 32);
  const l1Size = u32(buffer, 36);
  let incompatible = 0n;
  let autoclear = 0n;
  let refcountOrder = 4;
  let headerLength = 72;
  let compressionType: Qcow2Header['compressionType'] = 'zlib';
  if (version === 3) {
    incompatible = u64(buffer, 72);
    autoclear = u64(buffer, 88);
    refcountOrder = u32(buffer, 96);
    headerLength = u32(buffer, 100);
    if (headerLength < 104 || headerLength % 8 !== 0) throw new HeaderError(`header length ${headerLength} is invalid`);
    if (refcountOrder > 6) throw new HeaderError(`refcount_order ${refcountOrder} is out of range`);
    const compressionByte = headerLength > 104 ? (buffer[104] ?? 0) : 0;
    compressionType = compressionByte === 0 ? 'zlib' : compressionByte === 1 ? 'zstd' : 'unknown';
  }
  const limit = Math.min(buffer.length, clusterSize);
  const extensions = readExtensions(buffer, headerLength, limit);
  let backingName: string | null = null;
  if (backingOffset !== 0) {
    if (backingSize === 0 || backingSize > 1023) throw new HeaderError(`backing file name of ${backingSize} bytes`);
    if (backingOffset + backingSize > limit) throw new HeaderError('the backing file name lies outside the first cluster');
    backingName = readName(buffer, backingOffset, backingSize, 'the backing file name');
  }
  const bit = (n: number): boolean => (incompatible & (1n << BigInt(n))) !== 0n;
  return {
    version,
    clusterSize,
    virtualSize,
    cryptMethod,
    backingName,
    backingFormat: extensions.backingFormat,
    dataFileName: extensions.dataFileName,
    dataFileBit: bit(INCOMPATIBLE.dataFile),
    cryptoExtension: extensions.crypto,
    corrupt: bit(INCOMPATIBLE.corrupt),
    extendedL2: bit(INCOMPATIBLE.extendedL2),
    refcountBits: 2 ** refcountOrder,
    compressionType: bit(INCOMPATIBLE.compressionType) ? compressionType : 'zlib',
    unknownIncompatible: incompatible & ~KNOWN_INCOMPATIBLE_MASK,
    hasBitmapsExtension: extensions.bitmaps !== null,
    bitmapDirectory: extensions.bitmaps,
    bitmapsAutoclear: (autoclear & 1n) !== 0n,
    l1Size,
  };
}
