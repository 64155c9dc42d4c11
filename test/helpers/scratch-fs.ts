// Test helper: a small ext4 of the test's own, on a loop device, mounted in a scratch folder: inode numbers that only
// the test hands out (so a deleted file's inode comes back at once: ext4 with a journal reuses it, where one without
// passes over inodes freed in the last minutes), and file systems without birth time (128-byte inodes).
import { execa } from 'execa';
import { mkdir } from 'node:fs/promises';
import { sh } from './commands.js';
import { Workspace } from './workspace.js';

/** A mounted scratch ext4 and a workspace inside it. */
export class ScratchExt4 {
  private constructor(
    private readonly outer: Workspace,
    private readonly mountPoint: string,
    readonly ws: Workspace,
  ) {}

  /** Makes a sparse image of sizeMiB, mkfs.ext4 (with a journal; 128-byte inodes when asked: no birth time), mounts it. */
  static async create(options: { sizeMiB?: number; inodeSize?: 128 | 256 } = {}): Promise<ScratchExt4> {
    const outer = await Workspace.create('volmerge-scratchfs-');
    const image = outer.path('fs.img');
    const mountPoint = outer.path('mnt');
    try {
      await sh(['truncate', '-s', `${options.sizeMiB ?? 768}M`, image]);
      await sh(['mkfs.ext4', '-q', '-F', '-I', String(options.inodeSize ?? 256), image]);
      await mkdir(mountPoint);
      await sh(['mount', '-o', 'loop', image, mountPoint]);
    } catch (error) {
      await outer.dispose();
      throw error;
    }
    return new ScratchExt4(outer, mountPoint, await Workspace.create('ws-', mountPoint));
  }

  /** Whether this machine lets the tests mount a file system (root, loop devices, ext4). */
  static async usable(): Promise<boolean> {
    if (process.getuid?.() !== 0) return false;
    try {
      await (await ScratchExt4.create({ sizeMiB: 16 })).dispose();
      return true;
    } catch {
      return false;
    }
  }

  /** Detaches the workspace's loop devices, unmounts (the loop device goes with it) and removes everything. */
  async dispose(): Promise<void> {
    await this.ws.dispose();
    await execa('umount', [this.mountPoint], { reject: false });
    await this.outer.dispose();
  }
}
