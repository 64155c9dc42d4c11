// Test helper: a temporary folder with chains on files or on 128 MiB loop devices, cleaned up afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLoop, detachLoop } from './loop.js';

/** A scratch folder and the loop devices made in it. */
export class Workspace {
  private readonly loops: string[] = [];
  private constructor(readonly dir: string) {}

  /** Makes a new scratch folder (under parent, else VOLMERGE_TEST_TMP or the system's tmp). */
  static async create(prefix = 'volmerge-test-', parent?: string): Promise<Workspace> {
    return new Workspace(await mkdtemp(join(parent ?? (process.env.VOLMERGE_TEST_TMP || tmpdir()), prefix)));
  }

  /** A path inside the folder. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** A fixed-size block device over a sparse file in the folder. */
  async blockDevice(name: string, sizeBytes: number): Promise<string> {
    const device = await attachLoop(this.path(`${name}.img`), sizeBytes);
    this.loops.push(device);
    return device;
  }

  /** Detaches every loop device and removes the folder. */
  async dispose(): Promise<void> {
    for (const device of this.loops.splice(0)) await detachLoop(device);
    await rm(this.dir, { recursive: true, force: true });
  }
}
