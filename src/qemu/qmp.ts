// One qemu-storage-daemon driven over QMP on its stdin and stdout: it starts with no image open, and the steps that need
// it open images (blockdev-add), work on them and close them (blockdev-del), so that one process serves a merge's
// backup, prune, commit and bitmaps. It dies with volmerge, whatever kills volmerge (setpriv --pdeathsig KILL).
import { VolmergeError } from '../errors.js';
import { runPiped, type CommandResult } from '../os/run.js';
import { QmpChannel, type QmpCommand, type QmpEvent, type QmpReply } from './qmp-channel.js';

export type { QmpCommand, QmpEvent, QmpReply } from './qmp-channel.js';

/** The qemu-storage-daemon binary; VOLMERGE_QEMU_STORAGE_DAEMON overrides it (tests point it at a missing file). */
export function storageDaemonBinary(): string {
  return process.env.VOLMERGE_QEMU_STORAGE_DAEMON || 'qemu-storage-daemon';
}

/** A running qemu-storage-daemon with QMP negotiated. */
export interface StorageDaemon {
  /** Runs one command; resolves with its reply (success or error alike); rejects when the daemon is gone. */
  execute(command: QmpCommand): Promise<QmpReply>;
  /** Sends all commands at once (QMP answers in order, one after the other); onReply(n): n answered so far. */
  executeAll(commands: readonly QmpCommand[], onReply?: (answered: number) => void): Promise<QmpReply[]>;
  /** Calls listener with every event from now on; returns the function that stops it. */
  onEvent(listener: (event: QmpEvent) => void): () => void;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** Asks it to quit (it closes every image, writing bitmaps back) and resolves with its exit; the same result when called again. */
  quit(): Promise<CommandResult>;
  /** SIGTERM (it still closes its images cleanly) and its exit: for an aborted merge. */
  kill(): Promise<CommandResult>;
}

/** Exit codes of setpriv when it could not run the daemon: 126 cannot execute, 127 not found. */
const NOT_RUNNABLE = [126, 127];

/** The daemon's first stderr line without its program name and the option it quotes. */
export function daemonComplaint(stderr: string): string {
  const line = stderr.split(/\r?\n/).map((l) => l.trim()).find((l) => l.length > 0) ?? '';
  return line.replace(/^(qemu-storage-daemon|setpriv):\s*/, '').replace(/^--blockdev \S+:\s*/, '') || 'no message';
}

/**
 * Starts one qemu-storage-daemon with its QMP monitor on stdin/stdout and negotiates capabilities; no image is open.
 * Undefined when it cannot run here (not installed): callers fall back to qemu-img. Throws 'qemu-failed' when it
 * started but would not talk QMP. It stays in volmerge's process group (a signal to the group reaches it) and gets
 * SIGKILL when volmerge dies (setpriv --pdeathsig), so no image stays open behind a killed merge, however long the
 * commit in it takes.
 */
export async function startStorageDaemon(): Promise<StorageDaemon | undefined> {
  let child;
  try {
    child = runPiped(['setpriv', '--pdeathsig', 'KILL', storageDaemonBinary(), '--chardev', 'stdio,id=qmp', '--monitor', 'chardev=qmp']);
  } catch {
    return undefined;
  }
  const exited = child.exited.then(
    (result) => ({ result }),
    (error: Error) => ({ error }),
  );
  const channel = new QmpChannel({ input: child.stdout, output: child.stdin, destroy: () => child.stdin.destroy() }, 'qemu-storage-daemon');
  const greeted = await Promise.race([channel.greetingMessage().then(() => 'greeted' as const, () => 'failed' as const), exited]);
  if (greeted !== 'greeted') {
    child.kill('SIGKILL');
    const end = await exited;
    if ('error' in end || NOT_RUNNABLE.includes(end.result.exitCode)) return undefined;
    throw new VolmergeError('qemu-failed', `qemu-storage-daemon did not start (exit ${end.result.exitCode}): ${daemonComplaint(end.result.stderr)}`, {
      argv: end.result.argv,
      exitCode: end.result.exitCode,
      stderr: end.result.stderr,
    });
  }
  const negotiated = await channel.execute({ execute: 'qmp_capabilities' }).catch((error: Error) => ({ error: { class: 'GenericError', desc: error.message } }));
  if ('error' in negotiated) {
    child.kill('SIGKILL');
    await exited;
    throw new VolmergeError('qemu-failed', `qemu-storage-daemon refused QMP: ${negotiated.error.desc}`);
  }
  return daemonOver(channel, child.exited, child.stderr, (signal) => child.kill(signal));
}

/** The StorageDaemon over a negotiated channel. */
function daemonOver(channel: QmpChannel, exited: Promise<CommandResult>, stderr: () => string, signal: (name: NodeJS.Signals) => void): StorageDaemon {
  let ending: Promise<CommandResult> | undefined;
  const end = (how: () => Promise<unknown>): Promise<CommandResult> => {
    ending ??= how().then(
      () => exited,
      () => exited,
    );
    return ending;
  };
  return {
    execute: (command) => channel.execute(command),
    executeAll(commands, onReply) {
      let answered = 0;
      return Promise.all(
        commands.map((command) =>
          channel.execute(command).then((reply) => {
            answered += 1;
            onReply?.(answered);
            return reply;
          }),
        ),
      );
    },
    onEvent: (listener) => channel.onEvent(listener),
    stderr,
    // After quit the daemon may hang up before it replies: its exit decides.
    quit: () => end(() => channel.execute({ execute: 'quit' })),
    kill: () =>
      end(async () => {
        signal('SIGTERM');
      }),
  };
}
