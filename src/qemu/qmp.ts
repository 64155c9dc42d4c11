// One qemu-storage-daemon that opens one qcow2 image read-write and runs QMP commands on it in order, then quits:
// many bitmap changes for the price of one process, one image open and one close (qemu-img bitmap does one per run).
// The daemon can be started ahead of the step that needs it: it opens the image (blockdev-add) only when run.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type CommandResult } from '../os/run.js';
import { QmpChannel, type QmpCommand, type QmpReply } from './qmp-channel.js';
import type { ProtocolDriver } from './queries.js';

/** The qemu-storage-daemon binary; VOLMERGE_QEMU_STORAGE_DAEMON overrides it (tests point it at a missing file). */
export function storageDaemonBinary(): string {
  return process.env.VOLMERGE_QEMU_STORAGE_DAEMON || 'qemu-storage-daemon';
}

/** The node name under which the image is opened: QMP commands address it with this. */
export const QMP_IMAGE_NODE = 'image';

export type { QmpCommand, QmpReply } from './qmp-channel.js';

/** How a session ended: the replies to the commands (in order) and the daemon's exit, stderr included. */
export interface QmpSession {
  /** One per command when the daemon opened the image and answered all; empty when it could not open it or died. */
  replies: QmpReply[];
  result: CommandResult;
}

/** A started qemu-storage-daemon with no image open yet. */
export interface StorageDaemon {
  /** Opens image (qcow2 over driver) read-write, runs the commands in order, quits; onReply(n): n commands answered. */
  run(image: string, driver: ProtocolDriver, commands: readonly QmpCommand[], onReply?: (answered: number) => void): Promise<QmpSession>;
  /** Quits the daemon if run() was not called (nothing is open in it); harmless afterwards. */
  stop(): Promise<void>;
}

/** Seconds after which the daemon is stopped (SIGTERM, it then closes the image cleanly) whatever happens to this process. */
const LIFETIME_SECONDS = 120;

/** Accepts one connection on a fresh unix socket in a private folder; undefined when that is not possible here. */
async function listenOnce(): Promise<{ path: string; connection: Promise<Socket>; close(): Promise<void> } | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'volmerge-qmp-'));
  const path = join(dir, 'qmp.sock');
  const server = createServer();
  const close = async (): Promise<void> => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
  } catch {
    await close();
    return undefined;
  }
  return { path, connection: new Promise<Socket>((resolve) => server.once('connection', resolve)), close };
}

/** The daemon's exit as a failure: non-zero, with what went wrong on the QMP side in its stderr (first, when firstLine). */
function failedExit(result: CommandResult, message: string, firstLine = false): CommandResult {
  const stderr = firstLine ? `${message}\n${result.stderr}` : `${result.stderr}\n${message}`;
  return { ...result, stderr, exitCode: result.exitCode || 1 };
}

/** A daemon that exited before it took QMP commands: run() reports that exit, as a daemon that could not start. */
function exitedDaemon(result: CommandResult): StorageDaemon {
  return { run: () => Promise.resolve({ replies: [], result }), stop: () => Promise.resolve() };
}

/**
 * Starts one qemu-storage-daemon and negotiates QMP; no image is open in it until run(). Undefined when
 * qemu-storage-daemon cannot be run here (not installed, or no unix socket possible): callers fall back to qemu-img.
 * The daemon runs under `timeout --foreground`: it stays in volmerge's process group, so whatever kills that group (a
 * crash, systemd stopping the agent) kills the daemon too and frees the image at once; and it cannot outlive a
 * volmerge killed on its own by more than LIFETIME_SECONDS.
 */
export async function startStorageDaemon(): Promise<StorageDaemon | undefined> {
  const listening = await listenOnce();
  if (!listening) return undefined;
  const stop = new AbortController();
  let daemon: Promise<CommandResult> | undefined;
  try {
    // Without --foreground, timeout would move itself and the daemon into a process group of their own.
    const argv = ['timeout', '--foreground', '--kill-after=10', String(LIFETIME_SECONDS), storageDaemonBinary()];
    argv.push('--chardev', `socket,id=qmp,path=${listening.path}`, '--monitor', 'chardev=qmp');
    daemon = run(argv, { signal: stop.signal, timeoutMs: (LIFETIME_SECONDS + 20) * 1000 });
    const first = await Promise.race([listening.connection.then((socket) => ({ socket })), daemon.then((result) => ({ result }))]);
    if ('result' in first) {
      // Exit 126/127 from timeout: the daemon is not installed (or cannot run); any other exit is the daemon's own refusal.
      return first.result.exitCode === 126 || first.result.exitCode === 127 ? undefined : exitedDaemon(first.result);
    }
    const channel = new QmpChannel(first.socket, 'qemu-storage-daemon');
    await channel.greetingMessage();
    const negotiated = await channel.execute({ execute: 'qmp_capabilities' });
    if ('error' in negotiated) throw new Error(`qemu-storage-daemon refused QMP: ${negotiated.error.desc}`);
    return sessionOn(channel, daemon, stop);
  } catch (error) {
    if (error instanceof Error && /not installed/.test(error.message)) return undefined;
    if (!daemon) throw error;
    stop.abort();
    return exitedDaemon(failedExit(await daemon, (error as Error).message));
  } finally {
    // Once connected (or gone) the socket's path is no longer needed.
    await listening.close();
  }
}

/** The StorageDaemon over a negotiated channel. */
function sessionOn(channel: QmpChannel, daemon: Promise<CommandResult>, stop: AbortController): StorageDaemon {
  let used = false;
  const quit = async (): Promise<CommandResult> => {
    // After quit the daemon may hang up before it replies: its exit decides.
    await channel.execute({ execute: 'quit' }).catch(() => undefined);
    return daemon;
  };
  return {
    async run(image, driver, commands, onReply) {
      used = true;
      try {
        // backing: null: removing bitmaps needs nothing below the image, so nothing below it is opened.
        const blockdev = { driver: 'qcow2', 'node-name': QMP_IMAGE_NODE, file: { driver, filename: image }, backing: null };
        const added = await channel.execute({ execute: 'blockdev-add', arguments: blockdev });
        if ('error' in added) {
          // The image did not open (busy, missing, not qcow2): reported as a daemon that failed to open it.
          return { replies: [], result: failedExit(await quit(), added.error.desc, true) };
        }
        const replies: QmpReply[] = [];
        for (const command of commands) {
          replies.push(await channel.execute(command));
          onReply?.(replies.length);
        }
        return { replies, result: await quit() };
      } catch (error) {
        stop.abort();
        return { replies: [], result: failedExit(await daemon, (error as Error).message) };
      }
    },
    async stop() {
      if (used) return;
      used = true;
      await quit();
    },
  };
}

/**
 * Opens image read-write in one qemu-storage-daemon (daemon, when one was started ahead, else a new one), runs the
 * commands in order over QMP, quits (the daemon then closes the image, writing its bitmaps back), and returns replies
 * and exit. Undefined when qemu-storage-daemon cannot be run here: callers fall back to qemu-img.
 */
export async function runQmpOnImage(
  image: string,
  driver: ProtocolDriver,
  commands: readonly QmpCommand[],
  onReply?: (answered: number) => void,
  daemon?: StorageDaemon,
): Promise<QmpSession | undefined> {
  const started = daemon ?? (await startStorageDaemon());
  return started?.run(image, driver, commands, onReply);
}
