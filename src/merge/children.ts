// Which volumes a qcow2 image backs (its children): read from each candidate's own header with qemu-img info,
// never guessed from names. A candidate that cannot be read is an error, not "no child": failed is not absent.
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { readInfo } from '../qemu/queries.js';
import type { ImageInfo } from '../qemu/types.js';
import { listLvs } from '../storage/lvm.js';
import type { Volume } from '../storage/volume.js';

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/** Whether a file or device starts with the qcow2 magic ("QFI\xfb"); only qcow2 volumes can have a backing file here. */
export async function isQcow2(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(QCOW2_MAGIC);
  } finally {
    await handle.close();
  }
}

/** The path an image's backing file name resolves to (qemu resolves a relative name against the image's folder), or undefined. */
export async function resolvedBacking(info: ImageInfo, imagePath: string): Promise<string | undefined> {
  const name = info['backing-filename'];
  if (!name) return undefined;
  const full = info['full-backing-filename'] ?? (isAbsolute(name) ? name : join(dirname(imagePath), name));
  try {
    return await realpath(isAbsolute(full) ? full : join(dirname(imagePath), full));
  } catch {
    return undefined;
  }
}

/** An image's header and where its backing file resolves to; forceShare reads it even while a VM holds it. */
export async function readBacking(path: string, options: { forceShare?: boolean } = {}): Promise<{ info: ImageInfo; backing: string | undefined }> {
  const info = await readInfo(path, options);
  return { info, backing: await resolvedBacking(info, path) };
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
 * The candidates whose backing file is the volume at topRealPath. A candidate that is not qcow2 has no backing file;
 * one whose header cannot be read refuses the search ('busy' or 'qemu-failed' naming it), since it might be a child.
 */
export async function childrenAmong(candidates: readonly string[], topRealPath: string): Promise<string[]> {
  const children: string[] = [];
  for (const path of candidates) {
    let qcow2: boolean;
    try {
      qcow2 = await isQcow2(path);
    } catch (error) {
      throw new VolmergeError('qemu-failed', `cannot read ${path} to tell whether it is backed by top: ${(error as Error).message}`);
    }
    if (!qcow2) continue;
    const { backing } = await readBacking(path, { forceShare: true });
    if (backing === topRealPath) children.push(path);
  }
  return children;
}

/** Every volume beside top (its folder, or its VG's active LVs) whose backing file is top. */
export async function findChildren(top: Volume): Promise<string[]> {
  return childrenAmong(await candidateVolumes(top), top.realPath);
}
