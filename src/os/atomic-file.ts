// Durable file writes: temp file, fsync, rename over the target, fsync the folder; a crash leaves the old or the new file.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Flushes a folder's entries (a rename or a new file in it) to disk. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates a folder and its missing parents, and makes each new entry durable. */
export async function mkdirDurable(dir: string, mode = 0o755): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode });
  if (first === undefined) return;
  // Sync every folder from the parent of the first one created down to the last one.
  let current = dir;
  const toSync: string[] = [];
  while (current.length >= first.length) {
    toSync.push(dirname(current));
    current = dirname(current);
  }
  for (const folder of toSync.reverse()) await syncDir(folder);
}

/** Writes text to path atomically and durably: readers see the old content or the new, never a mix. */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDir(dir);
}

/** Removes a file or folder (a missing one is fine) and makes the removal durable. */
export async function removeDurable(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  await syncDir(dirname(path));
}
