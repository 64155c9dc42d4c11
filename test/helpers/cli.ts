// Test helper: the one way tests run the built volmerge CLI (as a user would, in a process group of its own), and a
// checksum of files to prove nothing changed.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { processGroupGone } from './wait.js';

/** The CLI as installed: the bundle that package.json's bin names (dist/src/volmerge.cjs, made by npm run build). */
export const CLI = fileURLToPath(new URL('../../src/volmerge.cjs', import.meta.url));

/** What a CLI run left. */
export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** What a CLI run left. */
export interface CliRun {
  /** The CLI's process id (its job id on the command line is cli-PID-MS). */
  pid: number | undefined;
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

/** A CLI run started in the background: its pid, whether it has exited, and its end (the group gone). */
export interface StartedCli {
  pid: number | undefined;
  exited(): boolean;
  /** Sends a signal to the CLI's whole process group (as a crash would take qemu-img children with it, and a terminal's Ctrl-C does). */
  kill(signal: NodeJS.Signals): void;
  /** Sends a signal to the CLI's process alone (kill -TERM PID), not to its children. */
  signalProcess(signal: NodeJS.Signals): void;
  /** What the CLI has printed on stderr so far. */
  stderrSoFar(): string;
  done: Promise<CliRun>;
}

/**
 * Starts the built CLI detached (its own session and process group, as setsid does): a crash point SIGKILLs that group,
 * qemu-img included, and never the test runner's.
 */
export function startCli(args: readonly string[], env: Record<string, string>): StartedCli {
  const child = execa('node', [CLI, ...args], { reject: false, stdin: 'ignore', detached: true, env });
  let exited = false;
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer | string) => (stderr += chunk.toString()));
  const done = (async (): Promise<CliRun> => {
    const result = await child;
    exited = true;
    if (child.pid !== undefined) await processGroupGone(child.pid);
    return { pid: child.pid, exitCode: result.exitCode, signal: result.signal ?? undefined, stdout: String(result.stdout), stderr: String(result.stderr) };
  })();
  return {
    pid: child.pid,
    exited: () => exited,
    kill: (signal) => {
      if (child.pid !== undefined && !exited) process.kill(-child.pid, signal);
    },
    signalProcess: (signal) => {
      if (child.pid !== undefined && !exited) process.kill(child.pid, signal);
    },
    stderrSoFar: () => stderr,
    done,
  };
}

/** Runs the built CLI detached (see startCli) and waits for its end. */
export async function runCli(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  return startCli(args, env).done;
}

/** Runs `volmerge ARGS` (through runCli) when only the exit code and output matter; never throws on a non-zero exit. */
export async function volmerge(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await runCli(args, env);
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** SHA-256 of a file or block device's whole content. */
export async function checksum(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Checksums of several paths, to compare before and after a refused request. */
export async function checksums(paths: readonly string[]): Promise<string[]> {
  return Promise.all(paths.map(checksum));
}
