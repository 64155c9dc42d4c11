// Runs one external command from an argv array (never a shell string), logging it and capturing its output.
import { execa } from 'execa';
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

/** Runs argv[0] with argv[1..]; resolves with the result whatever the exit code, rejects only if it could not start. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  started += 1;
  log.debug(`run: ${argv.map(quoteForLog).join(' ')}`);
  const child = execa(file, args, {
    reject: false,
    stdin: 'ignore',
    encoding: 'utf8',
    stripFinalNewline: false,
    timeout: options.timeoutMs,
    cancelSignal: options.signal,
    forceKillAfterDelay: 5000,
    env: { LC_ALL: 'C', ...options.env },
  });
  if (options.onStdout) {
    const onStdout = options.onStdout;
    child.stdout?.on('data', (chunk: Buffer | string) => onStdout(chunk.toString()));
  }
  const result = await child;
  if (result.failed && result.exitCode === undefined && !result.signal) {
    const reason = result.code === 'ENOENT' ? `${file} is not installed (not found in PATH)` : result.shortMessage;
    throw new Error(reason);
  }
  const outcome: CommandResult = {
    argv,
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    signal: result.signal ?? undefined,
  };
  log.debug(`run: exit ${outcome.exitCode}${outcome.signal ? ` (${outcome.signal})` : ''}: ${file}`);
  return outcome;
}

/** Quotes an argument for a log line only; nothing is ever run through a shell. */
function quoteForLog(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
