// Test helper for Ctrl-C and SIGTERM on `volmerge merge`: waiting until the CLI has reached a point (a qemu-img running
// in its process group, the commit writing, a line on its stderr), and reading the one JSON object an interrupted run
// prints.
import { expect } from 'chai';
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { scanJournals } from '../../src/engine/host-store.js';
import { parseAgainst } from '../../src/schema.js';
import type { CliRun, StartedCli } from './cli.js';
import { sleep } from './wait.js';

/** How `volmerge merge --json` says that a signal stopped (or did not stop) the merge. */
export interface InterruptedJson {
  status: 'done' | 'planned' | 'failed' | 'interrupted';
  interrupted?: { signal: string; chain: 'as-before' | 'unfinished' | 'merged'; resumeFrom?: string; leftAtOnce?: true; lastStep?: string };
  error?: { code: string; message: string };
  fullBackupNeeded?: string[];
}

/** The pids of a process group. */
async function groupPids(pgid: number): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) found.push(pid);
    } catch {
      // The process ended meanwhile.
    }
  }
  return found;
}

/** The command lines of the processes in a process group (the CLI's children included), from /proc. */
export async function groupCommands(pgid: number): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await groupPids(pgid)) {
    try {
      found.push((await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim());
    } catch {
      // The process ended meanwhile.
    }
  }
  return found;
}

/** Waits until a process of the CLI's group runs a command line matching pattern; fails when the CLI exits first. */
export async function untilChildRuns(cli: StartedCli, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (cli.pid !== undefined && (await groupCommands(cli.pid)).some((line) => pattern.test(line))) return;
    if (cli.exited()) {
      const run = await cli.done;
      throw new Error(`the CLI exited (${run.exitCode ?? run.signal}) before running ${pattern}: ${run.stderr.trim()}`);
    }
    if (Date.now() > deadline) throw new Error(`no process matching ${pattern} in the CLI's group within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Whether a process of the group holds file open. */
async function groupHolds(pgid: number, file: string): Promise<boolean> {
  for (const pid of await groupPids(pgid)) {
    try {
      for (const fd of await readdir(`/proc/${pid}/fd`)) {
        if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === file) return true;
      }
    } catch {
      // The process ended meanwhile.
    }
  }
  return false;
}

/**
 * Waits until the merge's commit writes: its journal says commit started and a process of the CLI's group holds top
 * open (qemu-storage-daemon's block-commit, or qemu-img commit without the daemon; nothing else opens top after
 * planning). Fails when the CLI exits first.
 */
export async function untilCommitRuns(cli: StartedCli, chain: { top: string; stateDir: string }, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const top = await realpath(chain.top);
  for (;;) {
    const [entry] = await scanJournals(chain.stateDir).catch(() => []);
    const started = entry !== undefined && 'journal' in entry && entry.journal.steps.commit?.status === 'started';
    if (started && cli.pid !== undefined && (await groupHolds(cli.pid, top))) return;
    if (cli.exited()) {
      const run = await cli.done;
      throw new Error(`the CLI exited (${run.exitCode ?? run.signal}) before its commit ran: ${run.stderr.trim()}`);
    }
    if (Date.now() > deadline) throw new Error(`the commit did not start within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Waits until the CLI has printed a line matching pattern on stderr; fails when it exits first. */
export async function untilStderr(cli: StartedCli, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(cli.stderrSoFar())) {
    if (cli.exited()) throw new Error(`the CLI exited before printing ${pattern}: ${cli.stderrSoFar().trim()}`);
    if (Date.now() > deadline) throw new Error(`the CLI did not print ${pattern} within ${timeoutMs} ms: ${cli.stderrSoFar().trim()}`);
    await sleep(25);
  }
}

/** Expects a run that a signal ended (the shell's 130 or 143) and returns its JSON, checked against the schema. */
export function expectEndedBy(run: CliRun, signal: 'SIGINT' | 'SIGTERM'): InterruptedJson {
  expect(run.signal, `ended by ${signal}, not exit ${run.exitCode}: ${run.stderr}`).to.equal(signal);
  expect(run.stdout.trim().split('\n'), 'one JSON object on stdout').to.have.length(1);
  const json = parseAgainst<InterruptedJson>('merge-result.schema.json', run.stdout, 'volmerge merge --json (interrupted)');
  expect(run.stderr, 'no stack trace').not.to.match(/^\s+at /m);
  return json;
}
