// Which volumes a qcow2 image backs (its children): read from each candidate's own header, never guessed from names.
// A candidate that cannot be read is an error, not "no child": failed is not absent.
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { hasQcow2Magic, parseQcow2Header, type Qcow2Header } from '../qemu/qcow2-header.js';
import { readInfo } from '../qemu/queries.js';
import type { ImageInfo } from '../qemu/types.js';
import { listLvs } from '../storage/lvm.js';
import type { Volume } from '../storage/volume.js';
import { readHeaderBytes } from '../qemu/qcow2-header-bytes.js';
import { assertPlainQcow2, isPlainPath } from './chain-guard.js';

/** Reads a volume's qcow2 header without qemu; undefined when it is not qcow2 (only qcow2 volumes have a backing file here). */
async function headerOf(path: string): Promise<Qcow2Header | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readHeaderBytes(path);
  } catch (error) {
    throw new VolmergeError('qemu-failed', `cannot read ${path} to tell whether it is backed by top: ${(error as Error).message}`);
  }
  if (!hasQcow2Magic(bytes)) return undefined;
  try {
    return parseQcow2Header(bytes);
  } catch (error) {
    throw new VolmergeError('unsupported-image', `${path}: its qcow2 header cannot be read (${(error as Error).message}), so volmerge cannot tell whether it is backed by top`);
  }
}

/** The path a backing file name resolves to from an image at imagePath (qemu resolves a relative name against its folder), or undefined. */
async function resolveBackingName(name: string | null, imagePath: string): Promise<string | undefined> {
  if (name === null || !isPlainPath(name)) return undefined;
  try {
    return await realpath(isAbsolute(name) ? name : join(dirname(imagePath), name));
  } catch {
    return undefined;
  }
}

/**
 * A child's header and where its backing file resolves to, read from its header before qemu-img opens it (a child
 * with an external data file or encryption is refused); forceShare reads the rest even while a VM holds it.
 */
export async function readBacking(path: string, options: { forceShare?: boolean } = {}): Promise<{ info: ImageInfo; backing: string | undefined }> {
  const header = await headerOf(path);
  if (!header) throw new VolmergeError('not-qcow2', `child ${path} is not a qcow2 image, so it has no backing file`);
  assertPlainQcow2(header, 'child', path);
  const info = await readInfo(path, options);
  return { info, backing: await resolveBackingName(header.backingName, path) };
}

/** The parts of top that say where its children could be. */
export type ChildSearchRoot = Pick<Volume, 'kind' | 'realPath'> & { lv?: { vg: string; name: string } | undefined };

/** The volumes that could be top's children: the other files in top's folder, or the other active LVs of top's VG. */
export async function candidateVolumes(top: ChildSearchRoot): Promise<string[]> {
  if (top.kind === 'file') {
    const dir = dirname(top.realPath);
    const names = await readdir(dir);
    const files: string[] = [];
    for (const name of names.sort()) {
      const path = join(dir, name);
      if (path === top.realPath) continue;
      const facts = await stat(path).catch(() => undefined);
      if (facts?.isFile()) files.push(path);
    }
    return files;
  }
  if (top.kind === 'lv' && top.lv) {
    const lvs = await listLvs(top.lv.vg);
    const paths: string[] = [];
    for (const lv of lvs) {
      if (lv.name === top.lv.name || lv.activeLocally === false) continue;
      const path = `/dev/${lv.vg}/${lv.name}`;
      if (await stat(path).then(() => true, () => false)) paths.push(path);
    }
    return paths;
  }
  return [];
}

/**
 * The candidates whose backing file is the volume at topRealPath, read from their headers (no qemu-img: a candidate
 * is any file beside top). One that is not qcow2 has no backing file; one whose header cannot be read refuses the
 * search, naming it, since it might be a child.
 */
export async function childrenAmong(candidates: readonly string[], topRealPath: string): Promise<string[]> {
  const children: string[] = [];
  for (const path of candidates) {
    const header = await headerOf(path);
    if (header && (await resolveBackingName(header.backingName, path)) === topRealPath) children.push(path);
  }
  return children;
}

/** Every volume beside top (its folder, or its VG's active LVs) whose backing file is top. */
export async function findChildren(top: Volume): Promise<string[]> {
  return childrenAmong(await candidateVolumes(top), top.realPath);
}
