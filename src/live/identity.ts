// Which volume a path is, independent of how it is spelled: a symlink (/dev/VG/LV), a relative or a bind-mounted path
// all give the same key as the path qemu opened.
import { stat } from 'node:fs/promises';

/** st_rdev for block devices, st_dev:st_ino for files; undefined when nothing is at path. */
export async function volumeKey(path: string): Promise<string | undefined> {
  try {
    const facts = await stat(path);
    return facts.isBlockDevice() ? `block:${facts.rdev}` : `file:${facts.dev}:${facts.ino}`;
  } catch {
    return undefined;
  }
}
