// Runs one external command from an argv array (never a shell string), logging it and capturing its output; or starts
// one that talks over its stdin and stdout (a QMP monitor) while its stderr is collected.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { log } from '../log.js';

/** What a finished command left behind. */
export interface CommandResult {
  argv: readonly string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Set when the process ended by a signal (aborted, killed, timed out). */
  signal?: string | undefined;
}

/** Options for one command. */
export interface RunOptions {
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number;
  /** Kill the command when this signal aborts. */
  signal?: AbortSignal;
  /** Called with each chunk of stdout as it arrives (progress parsing). */
  onStdout?: (chunk: string) => void;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

let started = 0;

/** How many external processes this process has started (benchmarks read it). */
export function processesStarted(): number {
  return started;
}

/** Children still running, killed if this process exits before them (as execa's cleanup did). */
const running = new Set<ChildProcess>();
let exitHook = false;

/** Remembers a child until it exits; the first one installs the exit hook. */
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const orphan of running) orphan.kill('SIGTERM');
  });
}

/** How long a command has after SIGTERM (timeout, abort) before SIGKILL. */
const KILL_AFTER_MS = 5000;

/**
 * Runs argv[0] with argv[1..]; resolves with the result whatever the exit code, rejects only if it could not start.
 * Plain child_process (execa was three quarters of the CLI's bundle and a few ms per run): stdin closed, stdout and
 * stderr collected as UTF-8, LC_ALL=C; on timeout or abort SIGTERM, then SIGKILL after 5 s.
 */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  started += 1;
  log.debug(`run: ${argv.map(quoteForLog).join(' ')}`);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', ...options.env } });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    options.onStdout?.(chunk);
  });
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  let killer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (child.exitCode !== null || child.signalCode !== null || killer) return;
    child.kill('SIGTERM');
    killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  };
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(stop, options.timeoutMs);
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (error: NodeJS.ErrnoException) => reject(new Error(error.code === 'ENOENT' ? `${file} is not installed (not found in PATH)` : error.message)));
      child.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    const outcome: CommandResult = { argv, exitCode: code ?? -1, stdout, stderr, signal: signal ?? undefined };
    log.debug(`run: exit ${outcome.exitCode}${outcome.signal ? ` (${outcome.signal})` : ''}: ${file}`);
    return outcome;
  } finally {
    clearTimeout(timer);
    clearTimeout(killer);
    options.signal?.removeEventListener('abort', stop);
  }
}

/** A command started with pipes on stdin and stdout. */
export interface PipedProcess {
  stdin: Writable;
  stdout: Readable;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Settles when it has exited (rejects only when it could not start: not installed). */
  exited: Promise<CommandResult>;
  /** Sends it a signal (SIGTERM by default) unless it has exited. */
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts argv[0] with argv[1..], stdin and stdout piped for the caller, stderr collected; it stays in this process's
 * group. exited rejects when it could not start ('X is not installed' when it is not found).
 */
export function runPiped(argv: readonly string[]): PipedProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('runPiped: empty argv');
  started += 1;
  log.debug(`run: ${argv.map(quoteForLog).join(' ')} (piped)`);
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  track(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  // A write to a daemon that died is reported by its exit, not as an unhandled stream error.
  child.stdin.on('error', () => undefined);
  const exited = new Promise<CommandResult>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => reject(new Error(error.code === 'ENOENT' ? `${file} is not installed (not found in PATH)` : error.message)));
    child.once('close', (code, signal) => {
      log.debug(`run: exit ${code ?? -1}${signal ? ` (${signal})` : ''}: ${file}`);
      resolve({ argv, exitCode: code ?? -1, stdout: '', stderr, signal: signal ?? undefined });
    });
  });
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: () => stderr,
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Quotes an argument for a log line only; nothing is ever run through a shell. */
function quoteForLog(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
