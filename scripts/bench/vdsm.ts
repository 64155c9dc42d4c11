// vdsm's own command sequence for a cold merge with bitmaps, as a yardstick: one `qemu-img bitmap --remove` per stale
// base bitmap, `qemu-img measure` of top with its backing chain, `qemu-img commit -p -t none -b BASE TOP`, then per top
// bitmap `qemu-img bitmap --add -g G BASE NAME` and `qemu-img bitmap --merge NAME -F qcow2 -b TOP BASE NAME`. Each run
// waits for the one before, as vdsm's merge job does.
import { must } from './proc.js';

/** The names of the bitmaps of a golden chain: base's stale ones and top's. */
export interface ChainBitmaps {
  stale: readonly string[];
  top: readonly { name: string; granularity: number }[];
}

/** Runs vdsm's sequence on one fresh copy; resolves with the wall time from the first command's start to the last one's end. */
export async function vdsmSequence(top: string, base: string, bitmaps: ChainBitmaps): Promise<number> {
  const started = performance.now();
  for (const name of bitmaps.stale) await must(['qemu-img', 'bitmap', '--remove', '-f', 'qcow2', base, name]);
  await must(['qemu-img', 'measure', '--output', 'json', '-f', 'qcow2', '-O', 'qcow2', top]);
  await must(['qemu-img', 'commit', '-p', '-t', 'none', '-f', 'qcow2', '-b', base, top]);
  for (const bitmap of bitmaps.top) {
    await must(['qemu-img', 'bitmap', '--add', '-g', String(bitmap.granularity), '-f', 'qcow2', base, bitmap.name]);
    await must(['qemu-img', 'bitmap', '--merge', bitmap.name, '-F', 'qcow2', '-b', top, '-f', 'qcow2', base, bitmap.name]);
  }
  return performance.now() - started;
}
