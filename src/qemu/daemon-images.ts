// Opening and closing volumes in a qemu-storage-daemon: the blockdev-add of a qcow2 over a file or a block device with
// the options each use needs, and QMP errors turned into errors that name the volume (a refused open is 'busy' when
// another process holds it, as with qemu-img).
import { VolmergeError } from '../errors.js';
import { BUSY_HINT, classifyOpenFailure } from './qemu-img.js';
import type { QmpCommand, QmpReply, StorageDaemon } from './qmp.js';
import type { ProtocolDriver } from './queries.js';

/** Node names in the daemon; short, since qemu reads each QMP byte in a main-loop turn of its own. */
export const NODE = { base: 'b', top: 't', backup: 'k', backupFile: 'kf' } as const;

/** How one volume is opened. */
export interface OpenSpec {
  node: string;
  path: string;
  driver: ProtocolDriver;
  readOnly: boolean;
  /** O_DIRECT, as `qemu-img commit -t none` opens the chain; the page cache otherwise. */
  direct?: boolean;
  /** The node that is its backing (top over base); none: nothing below it is opened. */
  backing?: string;
}

/** The blockdev-add of a qcow2 volume. */
export function blockdevAdd(spec: OpenSpec): QmpCommand {
  const cache = spec.direct ? { cache: { direct: true } } : {};
  // discard: unmap as qemu-img commit opens base (BDRV_O_UNMAP), so a zeroed cluster is freed alike.
  const discard = spec.readOnly ? {} : { discard: 'unmap' };
  const file = { driver: spec.driver, filename: spec.path, ...cache, ...discard, ...(spec.readOnly ? { 'read-only': true } : {}) };
  return {
    execute: 'blockdev-add',
    arguments: { driver: 'qcow2', 'node-name': spec.node, file, ...cache, ...discard, 'read-only': spec.readOnly, backing: spec.backing ?? null },
  };
}

/** The error of a QMP command that failed on a volume: 'busy' when the volume is held, else as qemu-img's would be. */
export function failedOn(volume: string, what: string, reply: Extract<QmpReply, { error: unknown }>, daemon: StorageDaemon): VolmergeError {
  const code = classifyOpenFailure(reply.error.desc);
  const hint = code === 'busy' ? BUSY_HINT : '';
  return new VolmergeError(code, `${volume}: qemu-storage-daemon could not ${what}: ${reply.error.desc}${hint}`, { argv: ['qemu-storage-daemon', what], stderr: daemon.stderr() });
}

/** Throws the error of a reply that is one, naming the volume and what was asked. */
export function expectSuccess(reply: QmpReply, volume: string, what: string, daemon: StorageDaemon): unknown {
  if ('error' in reply) throw failedOn(volume, what, reply, daemon);
  return reply.return;
}

/** Opens a volume in the daemon; throws (naming it) when qemu refuses. */
export async function openVolume(daemon: StorageDaemon, spec: OpenSpec): Promise<void> {
  expectSuccess(await daemon.execute(blockdevAdd(spec)), spec.path, `open it${spec.readOnly ? ' read-only' : ''}`, daemon);
}

/** Closes a volume's node: qemu writes its bitmaps back and flushes it. */
export async function closeVolume(daemon: StorageDaemon, node: string, volume: string): Promise<void> {
  expectSuccess(await daemon.execute({ execute: 'blockdev-del', arguments: { 'node-name': node } }), volume, 'close it', daemon);
}

/** A chain as the daemon opens it: top over base. */
export interface DaemonChain {
  top: string;
  topDriver: ProtocolDriver;
  base: string;
  baseDriver: ProtocolDriver;
}

/** Opens base read-write and top read-only over it (nodes NODE.base and NODE.top). */
export async function openChain(daemon: StorageDaemon, chain: DaemonChain): Promise<void> {
  await openVolume(daemon, { node: NODE.base, path: chain.base, driver: chain.baseDriver, readOnly: false });
  await openVolume(daemon, { node: NODE.top, path: chain.top, driver: chain.topDriver, readOnly: true, backing: NODE.base });
}

/** Closes top and then base (base's bitmaps are written back and it is flushed). */
export async function closeChain(daemon: StorageDaemon, chain: DaemonChain): Promise<void> {
  await closeVolume(daemon, NODE.top, chain.top);
  await closeVolume(daemon, NODE.base, chain.base);
}
