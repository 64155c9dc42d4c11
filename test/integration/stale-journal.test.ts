// Issue 21, point 2: a merge killed inside the commit, then both volumes deleted and a new chain made whose base gets
// the deleted base's inode (at the same paths, and at other paths), or a loop device attached to another file. The
// dead job's journal is stale: it never acts (its bytes never change), the new chain merges as a new merge, `volmerge
// status` shows the journal as stale with the command that clears it, and that command clears it.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { canUseLoopDevices } from '../helpers/loop.js';
import { expectMerged, prepareChain, type PreparedChain } from '../helpers/crash-harness.js';
import { freshEachTest, freshWorkspaceEachTest } from '../helpers/hooks.js';
import { ScratchExt4 } from '../helpers/scratch-fs.js';
import { checkAgainst } from '../../src/schema.js';
import { expectDone, mergeJson } from '../helpers/merge-result.js';
import { sh } from '../helpers/commands.js';
import { checksums, runCli } from '../helpers/cli.js';
import { VolmergeError } from '../../src/errors.js';
import { configureLog } from '../../src/log.js';
import { recoverJobs, requestOf, type ResumableJob } from '../../src/jobs/recovery.js';
import { runMergeJob } from '../../src/jobs/run-merge.js';
import { exists } from '../helpers/wait.js';
import { asEarlierRelease, clearStale, expectCheckClean, inodeOf, jobFolders, journalBytes, killMidCommit, statusOf, takeInode } from '../helpers/stale-chain.js';
import type { Workspace } from '../helpers/workspace.js';

/** Merges the new chain: a new merge (not the dead job's), done, data and bitmaps right, base clean; the stale job named on stderr. */
async function expectNewMerge(chain: PreparedChain, staleJob: string): Promise<void> {
  const run = await mergeJson(['--top', chain.top, '--base', chain.base], chain.env);
  expectDone(run);
  expect(run.cli.stderr, 'the stale job is named, with the command that clears it').to.match(new RegExp(`job ${staleJob} .*is stale and was not used.*volmerge clear-stale --job ${staleJob}`));
  await expectMerged(chain);
  await expectCheckClean(chain.base);
}

/** Status of a base lists the dead job as stale (human and JSON), the chain itself idle. */
async function expectStaleInStatus(base: string, chain: PreparedChain, staleJob: string, reason: RegExp): Promise<void> {
  const { status } = await statusOf(base, chain.env);
  expect(status.state, 'the chain is not unfinished: the dead job is not its job').to.equal('idle');
  expect(status.job).to.equal(null);
  expect(status.stale.map((s) => s.jobId)).to.deep.equal([staleJob]);
  expect(status.stale[0]?.reason).to.match(reason);
  expect(status.stale[0]?.clear).to.equal(`volmerge clear-stale --job ${staleJob}`);
  const human = await runCli(['status', '--base', base], chain.env);
  expect(human.stdout).to.match(new RegExp(`stale: +job ${staleJob} .*never used`)).and.to.match(new RegExp(`clear it: volmerge clear-stale --job ${staleJob}`));
}

/** Clears the stale job: journal gone, nothing else left in the state folder. */
async function expectCleared(chain: PreparedChain, staleJob: string): Promise<void> {
  const { run, json } = await clearStale(staleJob, chain.env);
  expect(run.exitCode, run.stderr).to.equal(0);
  expect(json.status).to.equal('cleared');
  expect(json.jobId).to.equal(staleJob);
  expect(await jobFolders(chain.stateDir), 'no journal, no half-cleared folder').to.deep.equal([]);
}

/** Deletes both volumes (a VM removed) and makes a new chain at base/top whose base has the deleted base's inode. */
async function newChainOnReusedInode(ws: Workspace, old: PreparedChain, at: { base: string; top: string }): Promise<PreparedChain> {
  const [baseInode, topInode] = [await inodeOf(old.base), await inodeOf(old.top)];
  await rm(old.top);
  await rm(old.base);
  await takeInode(at.base, baseInode, ws.path('spare'), 10_000);
  // Top too, when it can be had: then the dead job's journal matches the new chain by device and inode in every volume.
  await takeInode(at.top, topInode, ws.path('spare'), 0).catch(() => undefined);
  const chain = await prepareChain(ws, 'file', at);
  expect(await inodeOf(chain.base), 'the new base has the dead base inode').to.equal(baseInode);
  return chain;
}

// The file cells run on an ext4 of the test's own: on this machine's root file system (ext4 without a journal) the
// kernel passes over an inode freed less than a minute (five, while its inode table block is dirty) ago, and other
// processes take inodes from the same groups; with a journal, and nobody else, a deleted file's inode comes back at once.
describe('a stale job never captures a new chain (files, inode reused)', function () {
  this.timeout(240_000);
  let ws: Workspace;
  before(async function () {
    if (!(await ScratchExt4.usable())) this.skip();
  });
  freshEachTest(
    () => ScratchExt4.create(),
    (scratch) => (ws = scratch.ws),
  );

  it('at the same paths: the new chain merges as a new merge; the dead job is stale in status, never acts, and is cleared', async () => {
    const old = await prepareChain(ws, 'file');
    const dead = await killMidCommit(old);
    const journal = await journalBytes(old.stateDir, dead.jobId);
    // The mark sidecar beside base is left behind, as a VM's removal that deletes only the images leaves it.
    expect(await exists(`${old.base}.volmerge-merging`)).to.equal(true);
    const chain = await newChainOnReusedInode(ws, old, { base: old.base, top: old.top });

    const before = await statusOf(chain.base, chain.env);
    expect(before.status.mark?.stale, 'the sidecar left by the dead base is stale').to.match(/set on a volume that is gone/);
    await expectStaleInStatus(chain.base, chain, dead.jobId, /another file now.*inode was reused/);
    await expectNewMerge(chain, dead.jobId);
    expect(await journalBytes(chain.stateDir, dead.jobId), 'the stale journal never changed').to.equal(journal);
    await expectStaleInStatus(chain.base, chain, dead.jobId, /another file now/);
    expect((await statusOf(chain.base, chain.env)).status.mark, "the new merge's own mark is off").to.equal(null);
    await expectCleared(chain, dead.jobId);
  });

  it("start-up recovery ends the dead job as stale instead of resuming it on the new chain, which stays untouched", async () => {
    const old = await prepareChain(ws, 'file');
    const dead = await killMidCommit(old);
    const chain = await newChainOnReusedInode(ws, old, { base: old.base, top: old.top });
    const sums = await checksums([chain.base, chain.top]);
    const saved = process.env.VOLMERGE_LOCK_DIR;
    process.env.VOLMERGE_LOCK_DIR = chain.env.VOLMERGE_LOCK_DIR;
    configureLog('error');
    try {
      const resumable: ResumableJob[] = [];
      const found = await recoverJobs(chain.stateDir, { resume: (job) => resumable.push(job) });
      expect(resumable, 'nothing handed on to resume').to.deep.equal([]);
      expect(found.map((f) => [f.jobId, f.state, f.error?.code])).to.deep.equal([[dead.jobId, 'failed', 'volume-deleted']]);
      expect(found[0]?.error?.message).to.match(/another file now.*journal is stale.*volmerge clear-stale --job/);
      // Were it handed on all the same (the agent runs a recovered job under its own id), it is refused, nothing changed.
      const resumed = runMergeJob({ ...requestOf(dead), jobId: dead.jobId, stateDir: chain.stateDir, volumesValidated: true });
      const error = await resumed.then(() => undefined, (thrown: unknown) => thrown);
      expect(error).to.be.instanceOf(VolmergeError);
      expect((error as VolmergeError).code).to.equal('volume-deleted');
      expect((error as VolmergeError).message).to.match(/was not resumed.*nothing was changed/);
    } finally {
      configureLog('warn');
      if (saved === undefined) delete process.env.VOLMERGE_LOCK_DIR;
      else process.env.VOLMERGE_LOCK_DIR = saved;
    }
    expect(await checksums([chain.base, chain.top]), 'the new chain is byte for byte as made').to.deep.equal(sums);
    await expectNewMerge(chain, dead.jobId);
  });

  it('at other paths: the new chain merges; the dead job is stale in the status of both bases and blocks nothing', async () => {
    const old = await prepareChain(ws, 'file');
    const dead = await killMidCommit(old);
    const journal = await journalBytes(old.stateDir, dead.jobId);
    const chain = await newChainOnReusedInode(ws, old, { base: ws.path('base2.qcow2'), top: ws.path('top2.qcow2') });

    await expectStaleInStatus(chain.base, chain, dead.jobId, /no such file/);
    await expectNewMerge(chain, dead.jobId);
    expect(await journalBytes(chain.stateDir, dead.jobId)).to.equal(journal);
    // The dead base's own path is gone: its status fails, and names the stale job that named it.
    const gone = await runCli(['status', '--base', old.base, '--json'], chain.env);
    expect(gone.exitCode).to.equal(1);
    const failed = checkAgainst<{ status: string; error: { code: string }; stale?: { jobId: string }[] }>('status.schema.json', JSON.parse(gone.stdout), 'status --json');
    expect(failed.error.code).to.equal('not-found');
    expect(failed.stale?.map((s) => s.jobId)).to.deep.equal([dead.jobId]);
    await expectCleared(chain, dead.jobId);
  });

  it('a journal of the current release (identities without birth time) resumes after an upgrade, and is stale once the inode is reused', async () => {
    const first = await prepareChain(ws, 'file');
    const upgraded = await killMidCommit(first);
    await asEarlierRelease(first.stateDir, upgraded.jobId, `${first.base}.volmerge-merging`);
    const resumed = await runCli(['merge', '--top', first.top, '--base', first.base], first.env);
    expect(resumed.exitCode, resumed.stderr).to.equal(0);
    expect(resumed.stdout).to.match(new RegExp(`finished the merge that job ${upgraded.jobId} had left at step commit`));
    await expectMerged(first);
    await expectCheckClean(first.base);

    await rm(ws.path('state'), { recursive: true });
    const old = await prepareChain(ws, 'file', { base: ws.path('b.qcow2'), top: ws.path('t.qcow2') });
    const dead = await killMidCommit(old);
    await asEarlierRelease(old.stateDir, dead.jobId, `${old.base}.volmerge-merging`);
    const journal = await journalBytes(old.stateDir, dead.jobId);
    const chain = await newChainOnReusedInode(ws, old, { base: old.base, top: old.top });
    await expectStaleInStatus(chain.base, chain, dead.jobId, /came into being at .* after the record was made/);
    await expectNewMerge(chain, dead.jobId);
    expect(await journalBytes(chain.stateDir, dead.jobId)).to.equal(journal);
    await expectCleared(chain, dead.jobId);
  });
});

describe('a stale job never captures a new chain (a file system without birth time: ext4 with 128-byte inodes)', function () {
  this.timeout(240_000);
  let ws: Workspace;
  before(async function () {
    if (!(await ScratchExt4.usable())) this.skip();
  });
  freshEachTest(
    () => ScratchExt4.create({ inodeSize: 128 }),
    (scratch) => (ws = scratch.ws),
  );

  it('tells the new base from the dead one by inode generation: the new chain merges, the dead job is stale', async () => {
    const old = await prepareChain(ws, 'file');
    const dead = await killMidCommit(old);
    const journal = await journalBytes(old.stateDir, dead.jobId);
    const chain = await newChainOnReusedInode(ws, old, { base: old.base, top: old.top });
    await expectStaleInStatus(chain.base, chain, dead.jobId, /generation .*inode was reused/);
    await expectNewMerge(chain, dead.jobId);
    expect(await journalBytes(chain.stateDir, dead.jobId)).to.equal(journal);
    expect(dead.volumes.base.identity, 'no birth time here: the inode generation is in the identity').to.match(/^file:\d+:\d+:g\d+$/);
    await expectCleared(chain, dead.jobId);
  });
});

describe('a stale job never captures a new chain (a loop device attached to another file)', function () {
  this.timeout(180_000);
  let ws: Workspace;
  before(async function () {
    if (!(await canUseLoopDevices())) this.skip();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-stale-loop-');

  it('the same loop devices over new files: the new chain merges; the dead job is stale, never acts, and is cleared', async () => {
    const old = await prepareChain(ws, 'block');
    const dead = await killMidCommit(old);
    const journal = await journalBytes(old.stateDir, dead.jobId);
    const MiB = 1024 * 1024;
    for (const [device, file] of [
      [old.base, ws.path('base-new.img')],
      [old.top, ws.path('top-new.img')],
    ] as const) {
      await sh(['truncate', '-s', String(128 * MiB), file]);
      await sh(['losetup', '-d', device]);
      await sh(['losetup', '--direct-io=on', device, file]);
    }
    const chain = await prepareChain(ws, 'block', { base: old.base, top: old.top });
    await expectStaleInStatus(chain.base, chain, dead.jobId, /attached to another file/);
    await expectNewMerge(chain, dead.jobId);
    expect(await journalBytes(chain.stateDir, dead.jobId)).to.equal(journal);
    await expectCleared(chain, dead.jobId);
    expect(await jobFolders(chain.stateDir)).to.deep.equal([]);
  });
});
