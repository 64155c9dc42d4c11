// Benchmark chains: a golden top -> base chain per data size, and identical fresh copies of it on files or on loop devices.
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { feed, must } from './proc.js';
import type { Workspace } from './workspace.js';

const MiB = 1024 * 1024;

/** Where a chain lives: qcow2 files, or qcow2 written straight onto loop devices. */
export type Medium = 'file' | 'loop';

/** A chain built once and copied before every run. */
export interface GoldenChain {
  dataMiB: number;
  staleBitmaps: number;
  dir: string;
  base: string;
  top: string;
  virtualBytes: number;
  /** Size of the loop device that receives base: virtual size plus room for qcow2 metadata and bitmaps. */
  baseDeviceBytes: number;
  /** Size of the loop device that receives top. */
  topDeviceBytes: number;
}

/** One fresh copy of a golden chain; dispose() removes it (and detaches its loop devices). */
export interface ChainCopy {
  medium: Medium;
  base: string;
  top: string;
  dispose(): Promise<void>;
}

/** MiB of data in base, written after top's data region so that the commit allocates all of top's clusters anew. */
const BASE_DATA_MiB = 64;
/** Writes in pieces of this many MiB (qemu-io needs a buffer of the piece's size). */
const PIECE_MiB = 64;

/** qemu-io -c arguments writing sizeMiB of a byte pattern at offsetMiB. */
function writeCommands(offsetMiB: number, sizeMiB: number, pattern: number): string[] {
  const commands: string[] = [];
  for (let done = 0; done < sizeMiB; done += PIECE_MiB) {
    commands.push('-c', `write -q -P ${pattern} ${offsetMiB + done}M ${Math.min(PIECE_MiB, sizeMiB - done)}M`);
  }
  return commands;
}

/** Adds count enabled persistent bitmaps stale0, stale1... to base: one qemu-img run each, or one qemu-storage-daemon for many. */
async function addStaleBitmaps(base: string, count: number): Promise<void> {
  if (count <= 32) {
    for (let i = 0; i < count; i += 1) await must(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', base, `stale${i}`]);
    return;
  }
  // One qemu-img run per bitmap would load and store every bitmap each time (minutes for 1000): one QMP session instead.
  const blockdev = JSON.stringify({ driver: 'qcow2', 'node-name': 'b', file: { driver: 'file', filename: base } });
  const lines = ['{"execute":"qmp_capabilities"}', `{"execute":"blockdev-add","arguments":${blockdev}}`];
  for (let i = 0; i < count; i += 1) lines.push(JSON.stringify({ execute: 'block-dirty-bitmap-add', arguments: { node: 'b', name: `stale${i}`, persistent: true } }));
  lines.push('{"execute":"quit"}');
  const result = await feed(['qemu-storage-daemon', '--chardev', 'stdio,id=qmp', '--monitor', 'chardev=qmp'], `${lines.join('\n')}\n`);
  if (result.code !== 0 || /"error"/.test(result.stdout) || result.stderr.trim()) {
    throw new Error(`adding ${count} bitmaps to ${base} failed (exit ${result.code}): ${result.stdout.slice(0, 500)} ${result.stderr}`);
  }
}

/**
 * Builds base (virtual size data + 512 MiB, 64 MiB of data, staleBitmaps stale bitmaps) and top (backing file named
 * relatively, one bitmap 'good' that records dataMiB of new data), then flushes them to disk.
 */
export async function buildGolden(workspace: Workspace, dataMiB: number, staleBitmaps: number): Promise<GoldenChain> {
  const dir = workspace.path(`golden-${dataMiB}M-${staleBitmaps}s`);
  await mkdir(dir);
  const virtualBytes = (dataMiB + 512) * MiB;
  const base = join(dir, 'base.qcow2');
  const top = join(dir, 'top.qcow2');
  await must(['qemu-img', 'create', '-q', '-f', 'qcow2', base, String(virtualBytes)]);
  await must(['qemu-io', '-f', 'qcow2', ...writeCommands(dataMiB, BASE_DATA_MiB, 0x11), base]);
  await addStaleBitmaps(base, staleBitmaps);
  await must(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top], { cwd: dir });
  await must(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', top, 'good']);
  await must(['qemu-io', '-f', 'qcow2', ...writeCommands(0, dataMiB, 0x5a), top]);
  await must(['sync', base, top]);
  const topBytes = (await stat(top)).size;
  return {
    dataMiB,
    staleBitmaps,
    dir,
    base,
    top,
    virtualBytes,
    baseDeviceBytes: virtualBytes + 128 * MiB,
    topDeviceBytes: Math.ceil(topBytes / MiB) * MiB + 16 * MiB,
  };
}

/** Drops a file's clean pages from the page cache, so that no run reads it from memory. */
export async function dropFromCache(file: string): Promise<void> {
  await must(['dd', `if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** A fresh, flushed copy of the golden chain as files (backing file named relatively, as in the golden chain). */
async function fileCopy(golden: GoldenChain, dir: string): Promise<ChainCopy> {
  const base = join(dir, 'base.qcow2');
  const top = join(dir, 'top.qcow2');
  await must(['cp', '--sparse=always', golden.base, base]);
  await must(['cp', '--sparse=always', golden.top, top]);
  await must(['sync', base, top]);
  await dropFromCache(base);
  await dropFromCache(top);
  return { medium: 'file', base, top, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** The golden chain's bytes on two fresh loop devices (direct I/O); top is then rebased (-u) onto base's device. */
async function loopCopy(workspace: Workspace, golden: GoldenChain, dir: string): Promise<ChainCopy> {
  const baseFile = join(dir, 'base.img');
  const topFile = join(dir, 'top.img');
  await must(['cp', '--sparse=always', golden.base, baseFile]);
  await must(['cp', '--sparse=always', golden.top, topFile]);
  await must(['sync', baseFile, topFile]);
  const devices: string[] = [];
  const dispose = async (): Promise<void> => {
    for (const device of devices) await workspace.detachLoop(device);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    devices.push(await workspace.attachLoop(baseFile, golden.baseDeviceBytes));
    devices.push(await workspace.attachLoop(topFile, golden.topDeviceBytes));
    const [base, top] = devices as [string, string];
    await must(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', base, top]);
    return { medium: 'loop', base, top, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** A fresh copy of the golden chain in its own folder (name), on files or loop devices; the copy is not timed. */
export async function freshCopy(workspace: Workspace, golden: GoldenChain, medium: Medium, name: string): Promise<ChainCopy> {
  const dir = workspace.path(name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  return medium === 'file' ? fileCopy(golden, dir) : loopCopy(workspace, golden, dir);
}
