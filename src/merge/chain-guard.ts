// Reads the headers of the whole backing chain below top before any qemu-img opens it, and refuses what would make
// qemu-img open something else than the chain's own volumes: external data files, backing names that are not plain
// paths (json:, nbd:, http:...), encryption, a missing backing format (qemu would probe it from the bytes), a loop.
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { HeaderError, parseQcow2Header, type Qcow2Header } from '../qemu/qcow2-header.js';
import { readHeaderBytes } from '../qemu/qcow2-header-bytes.js';

/** The formats volmerge merges: qcow2 volumes over a qcow2 or raw base. */
export type ImageFormat = 'qcow2' | 'raw';

/** One volume of a checked chain. */
export interface GuardedImage {
  /** The path that qemu-img is given (a resolved real path below top). */
  path: string;
  realPath: string;
  format: ImageFormat;
  /** The parsed header (qcow2 only). */
  header?: Qcow2Header;
}

/** The deepest chain volmerge follows. */
const MAX_CHAIN_LENGTH = 256;

function refuse(role: string, path: string, reason: string, fix: string): VolmergeError {
  return new VolmergeError('unsupported-image', `${role} ${path} ${reason}; volmerge does not open such an image${fix ? `: ${fix}` : ''}`);
}

/** Refuses a qcow2 header whose features would make qemu-img open or decrypt something beyond the image itself. */
export function assertPlainQcow2(header: Qcow2Header, role: string, path: string): void {
  if (header.cryptMethod !== 0 || header.cryptoExtension) {
    throw refuse(role, path, `is encrypted (${header.cryptMethod === 1 ? 'AES' : 'LUKS'})`, 'decrypt it first (qemu-img convert) or merge it with the tools that hold its key');
  }
  if (header.dataFileBit || header.dataFileName !== null) {
    throw refuse(role, path, `keeps its data in an external data file${header.dataFileName ? ` (${header.dataFileName})` : ''}, which qemu-img would open read-write`, 'convert it to a self-contained qcow2 image first');
  }
  if (header.unknownIncompatible !== 0n) throw refuse(role, path, `uses incompatible qcow2 features unknown to volmerge (bits 0x${header.unknownIncompatible.toString(16)})`, '');
  if (header.compressionType === 'unknown') throw refuse(role, path, 'uses an unknown compression type', '');
  if (header.corrupt) throw refuse(role, path, 'is marked corrupt in its header', 'repair it (qemu-img check -r all) and check its data first');
}

/** Whether qemu would read a backing name as a plain file name (no "json:" and no "protocol:" before the first "/"). */
export function isPlainPath(name: string): boolean {
  if (name.length === 0 || name.startsWith('json:')) return false;
  const colon = name.indexOf(':');
  const slash = name.indexOf('/');
  return colon === -1 || (slash !== -1 && slash < colon);
}

/** Parses and checks the header of a volume that must be qcow2; 'not-qcow2' when it has no qcow2 header. */
async function guardQcow2(role: string, shown: string, path: string): Promise<Qcow2Header> {
  const bytes = await readHeaderBytes(path).catch((error: unknown) => {
    throw new VolmergeError('not-found', `${role} ${shown}: cannot be read: ${(error as Error).message}`);
  });
  let header: Qcow2Header;
  try {
    header = parseQcow2Header(bytes);
  } catch (error) {
    if (error instanceof HeaderError && error.message === 'no qcow2 magic') throw new VolmergeError('not-qcow2', `${role} ${shown} is not a qcow2 image (no qcow2 header)`);
    throw refuse(role, shown, `has a qcow2 header that volmerge cannot read (${(error as Error).message})`, '');
  }
  assertPlainQcow2(header, role, shown);
  return header;
}

/** The volume a checked header's backing name points at, and its format; undefined for an image with no backing file. */
async function followBacking(header: Qcow2Header, role: string, shown: string, path: string): Promise<{ path: string; realPath: string; format: ImageFormat } | undefined> {
  const name = header.backingName;
  if (name === null) return undefined;
  if (!isPlainPath(name)) {
    throw refuse(role, shown, `names its backing file "${name.slice(0, 200)}", which is not a plain path (a protocol or json: description)`, 'point it at a local volume (qemu-img rebase -u)');
  }
  if (header.backingFormat === null) {
    throw refuse(role, shown, `records no backing format for "${name}", so qemu would guess it from the backing volume's bytes`, `record it first: qemu-img rebase -u -f qcow2 -F FORMAT -b ${name} ${shown}`);
  }
  if (header.backingFormat !== 'qcow2' && header.backingFormat !== 'raw') {
    throw refuse(role, shown, `is backed by a ${header.backingFormat} volume (${name})`, 'volmerge merges qcow2 volumes over qcow2 or raw volumes');
  }
  const full = isAbsolute(name) ? name : join(dirname(path), name);
  let real: string;
  try {
    real = await realpath(full);
  } catch {
    throw new VolmergeError('bad-chain', `${role} ${shown}: its backing file ${name} (${full}) does not exist; the chain is broken`);
  }
  return { path: full, realPath: real, format: header.backingFormat };
}

/**
 * Checks the chain from top down to its last volume and returns it, top first: top and every qcow2 below it plain
 * (no data file, no encryption, no unknown features), every backing name a plain path with a recorded format of qcow2
 * or raw, no volume twice. Throws 'not-qcow2' for a top that is not qcow2, 'unsupported-image' otherwise.
 */
export async function guardChain(top: { path: string; realPath: string }): Promise<GuardedImage[]> {
  const chain: GuardedImage[] = [];
  let current: GuardedImage = { path: top.realPath, realPath: top.realPath, format: 'qcow2' };
  let shown = top.path;
  for (;;) {
    const role = chain.length === 0 ? 'top' : chain.length === 1 ? 'base' : 'a volume below base';
    if (chain.some((image) => image.realPath === current.realPath)) {
      const names = [...chain.map((image) => image.realPath), current.realPath].join(' -> ');
      throw refuse('top', top.path, `has a backing chain that loops (${names})`, 'fix the backing file names with qemu-img rebase -u');
    }
    if (chain.length >= MAX_CHAIN_LENGTH) throw refuse('top', top.path, `has a backing chain longer than ${MAX_CHAIN_LENGTH} volumes`, '');
    if (current.format === 'raw') {
      chain.push(current);
      return chain;
    }
    const header = await guardQcow2(role, shown, current.realPath);
    chain.push({ ...current, header });
    const next = await followBacking(header, role, shown, current.path);
    if (!next) return chain;
    current = next;
    shown = next.path;
  }
}
