// Test helper: fake tools (lvm-fixtures/bin) put on a path of their own under the name of the tool they stand in for.
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fixture scripts: failing-command, switchable-lvs, slow-measure-qemu-img, lying-storage-daemon. */
export const FAKE_TOOLS = fileURLToPath(new URL('../../../lvm-fixtures/bin/', import.meta.url));

/** Copies a fixture script into dir (made when missing) as name; returns its path. */
export async function fakeTool(dir: string, name: string, fixture: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await copyFile(join(FAKE_TOOLS, fixture), path);
  await chmod(path, 0o755);
  return path;
}
