// Benchmark helper: runs one command from an argv array (never a shell) and times it from spawn to exit.
import { spawn } from 'node:child_process';

/** What a finished command left behind, with its wall time. */
export interface Timed {
  argv: readonly string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit, measured by this process. */
  ms: number;
}

/** Options of one command. */
export interface ExecOptions {
  env?: Record<string, string>;
  /** Folder to run in. */
  cwd?: string;
}

/** Runs argv and resolves with its exit status, output and wall time; rejects only when it cannot start. */
export function exec(argv: readonly string[], options: ExecOptions = {}): Promise<Timed> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new Error('exec: empty argv'));
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', ...options.env },
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ argv, code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms });
    });
  });
}

/** Runs argv and throws, with its stderr, unless it exits 0. */
export async function must(argv: readonly string[], options: ExecOptions = {}): Promise<Timed> {
  const result = await exec(argv, options);
  if (result.code !== 0) {
    throw new Error(`${argv.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr.trim().slice(0, 2000)}`);
  }
  return result;
}

/** Runs argv with input written to its stdin (then closed); resolves with its exit status and output. */
export function feed(argv: readonly string[], input: string): Promise<Timed> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new Error('feed: empty argv'));
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ argv, code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms });
    });
    child.stdin.end(input);
  });
}
