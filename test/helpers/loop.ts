// Test helper: fixed-size block devices from sparse files on loop devices, always detached afterwards.
import { execa } from 'execa';
import { sh } from './commands.js';

/** Whether this machine can create loop devices (root and /dev/loop-control). */
export async function canUseLoopDevices(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const result = await execa('losetup', ['-f'], { reject: false });
  return result.exitCode === 0;
}

/** Creates a sparse file of sizeBytes and attaches it; returns the loop device path. */
export async function attachLoop(file: string, sizeBytes: number): Promise<string> {
  await sh(['truncate', '-s', String(sizeBytes), file]);
  return (await sh(['losetup', '--find', '--show', '--direct-io=on', file])).trim();
}

/** Detaches a loop device; one already gone is fine. */
export async function detachLoop(device: string): Promise<void> {
  await execa('losetup', ['-d', device], { reject: false });
}
