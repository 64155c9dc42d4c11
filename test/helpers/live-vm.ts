// Test helper: a real VM (qemu-system-x86_64 under TCG, no guest OS) with a qcow2 chain attached as -blockdev nodes
// (a storage and a format node per volume, named as libvirt would) under a virtio-blk-pci device, two QMP sockets (one
// for volmerge, one for the test: a monitor serves one client at a time), and "guest" writes through HMP qemu-io.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { QmpClient } from '../../src/qemu/qmp-client.js';
import { exists, sleep } from './wait.js';

/** The qdev path of the disk's block backend: qemu-io -d needs it (the device id alone has no backend). */
export const DISK_BACKEND = '/machine/peripheral/disk0/virtio-backend';

/** One guest write: a byte pattern over [offset, offset+length). */
export interface GuestWrite {
  pattern: number;
  offset: number;
  length: number;
}

/** The node names of one volume of the chain. */
export interface VmVolume {
  path: string;
  format: string;
  storage: string;
}

/** A running VM. */
export interface LiveVm {
  /** The QMP socket that volmerge uses. */
  socket: string;
  /** The test's own QMP connection (the second socket). */
  qmp: QmpClient;
  /** The chain as attached, base first. */
  volumes: VmVolume[];
  /** Every write the guest made, in order. */
  writes: GuestWrite[];
  /** Writes a pattern through the guest's disk; fails when qemu-io reports anything but a complete write. */
  write(pattern: number, offset: number, length: number): Promise<void>;
  /** Sends quit and waits for qemu to exit (it closes every image cleanly, storing bitmaps). */
  quit(): Promise<void>;
  /** Kills qemu (test failure); harmless when it has exited. */
  kill(): Promise<void>;
  /** SIGTERM, as an operator's kill does: qemu ends at once, closing its images (bitmaps stored) without a job's end. */
  terminate(): Promise<void>;
  /** What qemu printed (qemu-io's output goes there). */
  output(): string;
}

/** The -blockdev arguments of the chain, base first: read-only below the active layer, storage as libvirt sets it. */
export function blockdevArgs(paths: readonly string[]): { args: string[]; volumes: VmVolume[] } {
  const args: string[] = [];
  const volumes: VmVolume[] = [];
  paths.forEach((path, index) => {
    const storage = `drive${index}-storage`;
    const format = `drive${index}-format`;
    const driver = path.startsWith('/dev/') ? 'host_device' : 'file';
    args.push('-blockdev', JSON.stringify({ driver, filename: path, 'node-name': storage, 'auto-read-only': true, discard: 'unmap' }));
    const backing = index === 0 ? null : `drive${index - 1}-format`;
    args.push('-blockdev', JSON.stringify({ driver: 'qcow2', file: storage, 'node-name': format, 'read-only': index < paths.length - 1, backing }));
    volumes.push({ path, format, storage });
  });
  const active = volumes[volumes.length - 1];
  if (active) args.push('-device', `virtio-blk-pci,id=disk0,drive=${active.format}`);
  return { args, volumes };
}

/** Waits until qemu has printed `count` results of qemu-io writes; returns the last one. */
async function writeResult(vm: { printed(): string; exited(): boolean }, count: number): Promise<string> {
  for (;;) {
    const results = vm.printed().split('\n').filter((line) => /^(wrote |write failed)/.test(line));
    if (results.length >= count) return results[count - 1] ?? '';
    if (vm.exited()) throw new Error(`qemu exited before qemu-io answered: ${vm.printed().slice(-500)}`);
    await sleep(5);
  }
}

/** Starts the VM on the chain (paths base first, the last is the active layer) with its QMP sockets in dir. */
export async function startLiveVm(dir: string, paths: readonly string[]): Promise<LiveVm> {
  const socket = join(dir, 'volmerge.qmp');
  const testSocket = join(dir, 'test.qmp');
  const { args, volumes } = blockdevArgs(paths);
  const argv = ['-oL', 'qemu-system-x86_64', '-accel', 'tcg', '-machine', 'q35', '-nodefaults', '-nographic', '-m', '32'];
  argv.push('-qmp', `unix:${socket},server=on,wait=off`, '-qmp', `unix:${testSocket},server=on,wait=off`, ...args);
  // stdbuf: qemu-io prints with stdio, which a pipe would buffer until exit.
  const child: ChildProcess = spawn('stdbuf', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let printed = '';
  child.stdout?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exited = false;
  void exit.then(() => (exited = true));
  const kill = async (): Promise<void> => {
    if (!exited) child.kill('SIGKILL');
    await exit;
  };
  try {
    while (!(await exists(testSocket)) || !(await exists(socket))) {
      if (exited) throw new Error(`qemu-system-x86_64 exited at start: ${printed.slice(-2000)}`);
      await sleep(10);
    }
    // qemu creates the socket file before it listens on it: a refused connection this early is retried.
    let qmp: QmpClient | undefined;
    for (const deadline = Date.now() + 10_000; !qmp; ) {
      qmp = await QmpClient.connect(testSocket).catch(async (error: unknown) => {
        if (exited || Date.now() > deadline) throw error;
        await sleep(20);
        return undefined;
      });
    }
    const writes: GuestWrite[] = [];
    let results = 0;
    return {
      socket,
      qmp,
      volumes,
      writes,
      async write(pattern, offset, length) {
        await qmp.call('human-monitor-command', { 'command-line': `qemu-io -d ${DISK_BACKEND} "write -P ${pattern} ${offset} ${length}"` });
        results += 1;
        const result = await writeResult({ printed: () => printed, exited: () => exited }, results);
        if (!result.startsWith(`wrote ${length}/${length} bytes at offset ${offset}`)) throw new Error(`guest write at ${offset} failed: ${result}`);
        writes.push({ pattern, offset, length });
      },
      async quit() {
        await qmp.call('quit').catch(() => undefined);
        await exit;
        qmp.close();
      },
      async kill() {
        qmp.close();
        await kill();
      },
      async terminate() {
        qmp.close();
        if (!exited) child.kill('SIGTERM');
        await exit;
      },
      output: () => printed,
    };
  } catch (error) {
    await kill();
    throw error;
  }
}
