// Test helper for stale jobs: a merge killed inside the commit, the inode of a deleted volume taken by a new file,
// the job's journal read as bytes (to prove it never changed), status and clear-stale run and schema-checked.
import { expect } from 'chai';
import { execa } from 'execa';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scanJournals } from '../../src/engine/host-store.js';
import type { Journal } from '../../src/engine/journal.js';
import { checkAgainst, parseAgainst } from '../../src/schema.js';
import type { ChainStatus } from '../../src/jobs/status.js';
import { runCli, type CliRun } from './cli.js';
import { sleep } from './wait.js';
import type { PreparedChain } from './crash-harness.js';

/** 32 MiB of top at 16 MiB/s: the commit runs about two seconds, long enough to be killed in the middle. */
const SLOW_COMMIT = String(16 * 1024 * 1024);

/** Merges the chain and SIGKILLs the CLI's process group half-way through the commit; returns the job's journal. */
export async function killMidCommit(chain: PreparedChain): Promise<Journal> {
  const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--rate-limit', SLOW_COMMIT], { ...chain.env, VOLMERGE_CRASH_AT: 'commit:during:50' });
  expect(crashed.signal, `the merge was killed inside the commit: ${crashed.stderr}`).to.equal('SIGKILL');
  const entries = await scanJournals(chain.stateDir);
  expect(entries, 'one journal left by the killed merge').to.have.length(1);
  const [entry] = entries;
  if (!entry || !('journal' in entry)) throw new Error('the killed merge left no readable journal');
  expect(entry.journal.steps.commit?.status).to.equal('started');
  return entry.journal;
}

/** The inode number of a path. */
export async function inodeOf(path: string): Promise<bigint> {
  return (await stat(path, { bigint: true })).ino;
}

/**
 * Creates an empty file at path that has inode number `ino` (a deleted file's): files are made there until one gets it,
 * each miss moved into spareDir (so that its inode is not offered again) and removed at the end. ext4 hands out the
 * free inode nearest its parent folder's; without a journal (as here: /proc/fs/jbd2 is empty) it passes over one freed
 * less than about 30 s ago, so after a first quick round this goes on slowly until the inode comes back or the deadline
 * passes. Returns the tries.
 */
export async function takeInode(path: string, ino: bigint, spareDir: string, deadlineMs = 120_000): Promise<number> {
  const misses: string[] = [];
  const deadline = Date.now() + deadlineMs;
  try {
    for (let i = 1; ; i += 1) {
      await (await open(path, 'wx')).close();
      if ((await inodeOf(path)) === ino) return i;
      // Made only now: a folder made first would take the very inode this is after.
      if (i === 1) await mkdir(spareDir, { recursive: true });
      const miss = join(spareDir, `miss-${i}`);
      await rename(path, miss);
      misses.push(miss);
      if (Date.now() > deadline) throw new Error(`no file made at ${path} got inode ${ino} in ${i} tries (another process may hold it)`);
      if (i > 200) await sleep(250);
    }
  } finally {
    for (const miss of misses) await rm(miss, { force: true });
  }
}

/** A job's journal file as bytes: what "never acted on" compares. */
export async function journalBytes(stateDir: string, jobId: string): Promise<string> {
  return readFile(join(stateDir, 'jobs', jobId, 'journal.json'), 'utf8');
}

/** `volmerge status --base BASE --json`, schema-checked. */
export async function statusOf(base: string, env: Record<string, string>): Promise<{ run: CliRun; status: ChainStatus }> {
  const run = await runCli(['status', '--base', base, '--json'], env);
  expect(run.exitCode, run.stderr).to.equal(0);
  return { run, status: checkAgainst<ChainStatus>('status.schema.json', JSON.parse(run.stdout), 'volmerge status --json') };
}

/** What `volmerge clear-stale --json` prints. */
export interface ClearJson {
  status: 'cleared' | 'failed';
  jobId?: string;
  reason?: string;
  marks?: string[];
  kept?: string[];
  finishedEarlierRun?: true;
  error?: { code: string; message: string };
}

/** `volmerge clear-stale --job JOB --json` (and more args), schema-checked. */
export async function clearStale(job: string, env: Record<string, string>, more: string[] = []): Promise<{ run: CliRun; json: ClearJson }> {
  const run = await runCli(['clear-stale', '--job', job, '--json', ...more], env);
  return { run, json: parseAgainst<ClearJson>('clear-stale.schema.json', run.stdout, 'volmerge clear-stale --json') };
}

/** Expects qemu-img check to find an image clean: no errors, no leaked clusters. */
export async function expectCheckClean(image: string): Promise<void> {
  const result = await execa('qemu-img', ['check', '--output', 'json', '-f', 'qcow2', image], { reject: false, stdin: 'ignore' });
  const check = parseAgainst<{ 'check-errors': number; leaks?: number; corruptions?: number }>('qemu-img-check.schema.json', String(result.stdout), `qemu-img check ${image}`);
  expect({ exit: result.exitCode, errors: check['check-errors'], leaks: check.leaks ?? 0, corruptions: check.corruptions ?? 0 }, `qemu-img check ${image}`).to.deep.equal({
    exit: 0,
    errors: 0,
    leaks: 0,
    corruptions: 0,
  });
}

/** The names left in the state folder's jobs/ (.cleared- folders included). */
export async function jobFolders(stateDir: string): Promise<string[]> {
  return (await readdir(join(stateDir, 'jobs')).catch(() => [])).sort();
}

/** An identity as the current release writes it: file:DEV:INO, block:MAJ:MIN, lv:VG/LV (what comes after is this release's). */
function earlierIdentity(identity: string): string {
  const match = /^(file:\d+:\d+|block:\d+:\d+|lv:[^/:]+\/[^/:]+)/.exec(identity);
  if (!match?.[1]) throw new Error(`not an identity: ${identity}`);
  return match[1];
}

/**
 * Rewrites a journal (and the sidecar mark it left) as the current release writes them, identities without birth time,
 * generation or backing file (file:DEV:INO, block:MAJ:MIN), the mark without one: a host upgraded in the middle of a merge.
 */
export async function asEarlierRelease(stateDir: string, jobId: string, sidecar?: string): Promise<void> {
  const path = join(stateDir, 'jobs', jobId, 'journal.json');
  const journal = JSON.parse(await readFile(path, 'utf8')) as Journal;
  for (const role of ['top', 'base'] as const) journal.volumes[role].identity = earlierIdentity(journal.volumes[role].identity);
  await writeFile(path, `${JSON.stringify(journal, null, 2)}\n`);
  if (sidecar) {
    const mark = JSON.parse(await readFile(sidecar, 'utf8')) as Record<string, unknown>;
    delete mark.identity;
    await writeFile(sidecar, `${JSON.stringify(mark)}\n`);
  }
}
