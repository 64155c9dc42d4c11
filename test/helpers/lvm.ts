// Test helper: a throwaway volume group on a loop device (lvm-fixtures/vg/make-vg), and LVs in it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { sh } from './commands.js';

const VG_SCRIPTS = fileURLToPath(new URL('../../../lvm-fixtures/vg/', import.meta.url));

/** Whether LVs can be activated here (device-mapper present). */
export async function hasDeviceMapper(): Promise<boolean> {
  const result = await execa('bash', [join(fileURLToPath(new URL('../../../scripts/vm/', import.meta.url)), 'has-device-mapper')], { reject: false });
  return result.exitCode === 0;
}

/** A VG on a sparse loop device, removed by dispose() even after a failure. */
export class TestVg {
  private constructor(
    readonly name: string,
    readonly dir: string,
  ) {}

  /** Creates a VG with a unique name, a PV of pvSize (e.g. '2G') and the given extent size (e.g. '4m'). */
  static async create(pvSize = '2G', extentSize = '4m'): Promise<TestVg> {
    const dir = await mkdtemp(join(process.env.VOLMERGE_TEST_TMP || tmpdir(), 'volmerge-vg-'));
    const name = `vmtest${process.pid}x${Math.floor(Math.random() * 1e6)}`;
    const vg = new TestVg(name, dir);
    await sh(['bash', join(VG_SCRIPTS, 'make-vg'), '--dir', dir, '--vg', name, '--pv-size', pvSize, '--extent-size', extentSize]);
    return vg;
  }

  /** Creates an active LV of sizeMiB; returns /dev/VG/LV. */
  async lv(lvName: string, sizeMiB: number, tags: string[] = []): Promise<string> {
    const tagArgs = tags.flatMap((t) => ['--addtag', t]);
    await sh(['lvcreate', '-q', '-y', '-Wn', '-Zn', '-L', `${sizeMiB}m`, '-n', lvName, ...tagArgs, this.name]);
    await sh(['dd', 'if=/dev/zero', `of=/dev/${this.name}/${lvName}`, 'bs=1M', 'count=1', 'oflag=direct', 'status=none']);
    return `/dev/${this.name}/${lvName}`;
  }

  /** Size of an LV in bytes, from lvs. */
  async lvSize(lvName: string): Promise<number> {
    const out = await sh(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', `${this.name}/${lvName}`]);
    return Number(out.trim());
  }

  /** The VG's extent size in bytes. */
  async extentSize(): Promise<number> {
    const out = await sh(['vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_extent_size', this.name]);
    return Number(out.trim());
  }

  /** Removes an LV. */
  async removeLv(lvName: string): Promise<void> {
    await sh(['lvremove', '-q', '-y', `${this.name}/${lvName}`]);
  }

  /** Tears the VG, its PV, the loop device and the file down. */
  async dispose(): Promise<void> {
    await execa('bash', [join(VG_SCRIPTS, 'remove-vg'), '--dir', this.dir, '--vg', this.name], { reject: false });
    await rm(this.dir, { recursive: true, force: true });
  }
}
