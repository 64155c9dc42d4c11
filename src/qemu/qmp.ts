// One qemu-storage-daemon that opens one qcow2 image read-write and runs QMP commands on it in order, then quits:
// many bitmap changes for the price of one process, one image open and one close (qemu-img bitmap does one per run).
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type CommandResult } from '../exec/run.js';
import type { ProtocolDriver } from './queries.js';

/** The qemu-storage-daemon binary; VOLMERGE_QEMU_STORAGE_DAEMON overrides it (tests point it at a missing file). */
export function storageDaemonBinary(): string {
  return process.env.VOLMERGE_QEMU_STORAGE_DAEMON || 'qemu-storage-daemon';
}

/** The node name under which the image is opened: QMP commands address it with this. */
export const QMP_IMAGE_NODE = 'image';

/** One QMP command. */
export interface QmpCommand {
  execute: string;
  arguments?: Record<string, unknown>;
}

/** QMP's answer to one command. */
export type QmpReply = { return: unknown } | { error: { class: string; desc: string } };

/** How a session ended: the replies to the commands (in order) and the daemon's exit, stderr included. */
export interface QmpSession {
  /** One per command when the daemon opened the image and answered all; empty when it exited before connecting. */
  replies: QmpReply[];
  result: CommandResult;
}

/** Seconds after which the daemon is stopped (SIGTERM, it then closes the image cleanly) whatever happens to this process. */
const LIFETIME_SECONDS = 120;

/**
 * Sends the commands one at a time (capabilities first, quit last) and resolves with the replies once the daemon hangs
 * up; onReply(n) is called once the daemon has answered n of the commands.
 */
function converse(socket: Socket, commands: readonly QmpCommand[], onReply?: (answered: number) => void): Promise<QmpReply[]> {
  const queue: QmpCommand[] = [{ execute: 'qmp_capabilities' }, ...commands, { execute: 'quit' }];
  const replies: QmpReply[] = [];
  let sent = 0;
  let buffer = '';
  const sendNext = (): void => {
    socket.write(`${JSON.stringify({ ...queue[sent], id: sent })}\n`);
    sent += 1;
  };
  return new Promise((resolve, reject) => {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (!line) continue;
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          socket.destroy(new Error(`qemu-storage-daemon sent a QMP line that is not JSON: ${line.slice(0, 200)}`));
          return;
        }
        if ('QMP' in message) sendNext();
        else if ('return' in message || 'error' in message) {
          replies.push(message as QmpReply);
          const answered = replies.length - 1;
          if (answered >= 1 && answered <= commands.length) onReply?.(answered);
          if (sent < queue.length) sendNext();
        }
      }
    });
    // After quit the daemon may reset the connection: only the count of replies decides.
    let failure: Error | undefined;
    socket.on('error', (error) => (failure = error));
    socket.once('close', () => {
      if (replies.length === queue.length) resolve(replies.slice(1, -1));
      else reject(new Error(`qemu-storage-daemon hung up after ${replies.length} of ${queue.length} QMP replies${failure ? ` (${failure.message})` : ''}`));
    });
  });
}

/** Listens on a fresh unix socket in a private folder; undefined when that is not possible here. */
async function listen(): Promise<{ server: Server; path: string; dir: string } | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'volmerge-qmp-'));
  const path = join(dir, 'qmp.sock');
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    return { server, path, dir };
  } catch {
    server.close();
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
}

/**
 * Opens image (qcow2 over the file or host_device driver) read-write in one qemu-storage-daemon, runs the commands in
 * order over QMP, quits (the daemon then closes the image, writing its bitmaps back), and returns replies and exit.
 * Undefined when qemu-storage-daemon cannot be run here (not installed, or no unix socket possible): callers fall back
 * to qemu-img. The daemon runs under `timeout --foreground`: it stays in volmerge's process group, so whatever kills
 * that group (a crash, systemd stopping the agent) kills the daemon too and frees the image at once; and it cannot
 * outlive a volmerge killed on its own by more than LIFETIME_SECONDS. onReply(n): the daemon has answered n commands.
 */
export async function runQmpOnImage(
  image: string,
  driver: ProtocolDriver,
  commands: readonly QmpCommand[],
  onReply?: (answered: number) => void,
): Promise<QmpSession | undefined> {
  const listening = await listen();
  if (!listening) return undefined;
  const { server, path, dir } = listening;
  const stop = new AbortController();
  try {
    const connected = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const blockdev = { driver: 'qcow2', 'node-name': QMP_IMAGE_NODE, file: { driver, filename: image } };
    // Without --foreground, timeout would move itself and the daemon into a process group of their own.
    const argv = ['timeout', '--foreground', '--kill-after=10', String(LIFETIME_SECONDS), storageDaemonBinary()];
    argv.push('--blockdev', JSON.stringify(blockdev), '--chardev', `socket,id=qmp,path=${path}`, '--monitor', 'chardev=qmp');
    const daemon = run(argv, { signal: stop.signal, timeoutMs: (LIFETIME_SECONDS + 20) * 1000 });
    const first = await Promise.race([connected.then((socket) => ({ socket })), daemon.then((result) => ({ result }))]);
    if ('result' in first) {
      // Exit 126/127 from timeout: the daemon is not installed (or cannot run); any other exit is the daemon's own refusal.
      return first.result.exitCode === 126 || first.result.exitCode === 127 ? undefined : { replies: [], result: first.result };
    }
    let replies: QmpReply[];
    try {
      replies = await converse(first.socket, commands, onReply);
    } catch (error) {
      stop.abort();
      const result = await daemon;
      return { replies: [], result: { ...result, stderr: `${result.stderr}\n${(error as Error).message}`, exitCode: result.exitCode || 1 } };
    }
    return { replies, result: await daemon };
  } catch (error) {
    if (error instanceof Error && /not installed/.test(error.message)) return undefined;
    throw error;
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
