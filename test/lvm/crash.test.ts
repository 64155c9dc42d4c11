// Crash safety on real LVM (npm run test:lvm runs it, in the test VM where device-mapper is missing): the mid-merge mark is an LV tag,
// an extension survives a crash, lvs failing at recovery only delays the job, a removed LV ends it as volume-deleted,
// an LV made again under the same name leaves the dead job stale.
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import { execa } from 'execa';
import { configureLog } from '../../src/log.js';
import { runMergeJob } from '../../src/jobs/run-merge.js';
import { scanJournals } from '../../src/engine/host-store.js';
import { recoverJobs, type RecoveredJob, type ResumableJob } from '../../src/jobs/recovery.js';
import { covers, dirtyExtents, type Extent } from '../helpers/dirty-map.js';
import { bitmapsIn, makeChain, rawCopy, sameData } from '../helpers/images.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';
import { until } from '../helpers/wait.js';
import { Workspace } from '../helpers/workspace.js';

import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { runCli } from '../helpers/cli.js';
import { fakeTool } from '../helpers/fake-tools.js';
import { asEarlierRelease, clearStale, jobFolders, journalBytes, killMidCommit, statusOf } from '../helpers/stale-chain.js';

interface LvChain {
  top: string;
  base: string;
  raw: string;
  before: Record<string, Extent[]>;
  env: Record<string, string>;
  stateDir: string;
}

async function lvTags(vg: string, lv: string): Promise<string[]> {
  const out = await execa('lvs', ['--noheadings', '-o', 'lv_tags', `${vg}/${lv}`], { reject: false });
  return String(out.stdout).trim().split(',').filter((t) => t.length > 0);
}

describe('crash safety on LVM', function () {
  this.timeout(600_000);
  let vg: TestVg | undefined;
  let ws: Workspace;
  let serial = 0;
  const savedEnv = { ...process.env };

  before(async function () {
    if (!(await hasDeviceMapper())) this.skip();
    vg = await TestVg.create('2G', '4m');
    configureLog('error');
  });
  after(async () => {
    configureLog('warn');
    await vg?.dispose();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-crash-lvm-');
  beforeEach(() => {
    process.env.VOLMERGE_LOCK_DIR = ws.path('locks');
  });
  afterEach(() => {
    process.env = { ...savedEnv };
  });

  /** A 32 MiB base LV (too small: the merge must extend it) under a 128 MiB top LV with 48 MiB of data. */
  async function lvChain(): Promise<LvChain & { vgName: string; baseLv: string; topLv: string }> {
    if (!vg) throw new Error('no VG');
    serial += 1;
    const baseLv = `base${serial}`;
    const topLv = `top${serial}`;
    const base = await vg.lv(baseLv, 32);
    const top = await vg.lv(topLv, 128);
    await makeChain(base, top, { virtualSize: '256M', stale: 2, shared: ['shared'], topOnly: ['toponly'], baseDataMiB: 2, topDataMiB: 48, topDataOffsetMiB: 2 });
    const raw = ws.path('before.raw');
    await rawCopy(top, raw);
    const before = { shared: await dirtyExtents(top, 'shared'), toponly: await dirtyExtents(top, 'toponly') };
    const stateDir = ws.path('state');
    await mkdir(stateDir, { recursive: true });
    return { top, base, raw, before, stateDir, env: { VOLMERGE_STATE_DIR: stateDir, VOLMERGE_LOCK_DIR: ws.path('locks') }, vgName: vg.name, baseLv, topLv };
  }

  async function expectMerged(chain: LvChain): Promise<void> {
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
    const bitmaps = await bitmapsIn(chain.base);
    expect(bitmaps.map((b) => b.name).sort()).to.deep.equal(['shared', 'toponly']);
    for (const bitmap of bitmaps) expect(bitmap.flags, bitmap.name).to.deep.equal(['auto']);
    for (const name of ['shared', 'toponly']) expect(covers(await dirtyExtents(chain.base, name), chain.before[name] ?? []), name).to.equal(true);
    for (const bitmap of await bitmapsIn(chain.top)) expect(bitmap.flags, `top's ${bitmap.name}`).not.to.include('in-use');
  }

  for (const crashAt of ['extend:after', 'commit:during:50', 'bitmaps:before']) {
    it(`marks base with an LV tag and finishes after a SIGKILL at ${crashAt}`, async () => {
      const chain = await lvChain();
      const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--rate-limit', String(16 * 1024 * 1024)], { ...chain.env, VOLMERGE_CRASH_AT: crashAt });
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      const marked = (await lvTags(chain.vgName, chain.baseLv)).filter((t) => t.startsWith('VOLMERGE_MERGING_'));
      expect(marked, 'the mark is an LV tag from the mark step on').to.have.length(crashAt === 'extend:after' ? 0 : 1);
      const again = await runCli(['merge', '--top', chain.top, '--base', chain.base], chain.env);
      expect(again.exitCode, again.stderr).to.equal(0);
      await expectMerged(chain);
      expect(await lvTags(chain.vgName, chain.baseLv), 'the mark is gone').to.deep.equal([]);
    });
  }

  it('an LV made again under the same name: the dead job is stale (by UUID; a journal of the current release by creation time), the new chain merges', async () => {
    const old = await lvChain();
    const dead = await killMidCommit(old);
    await vg?.removeLv(old.topLv);
    await vg?.removeLv(old.baseLv);
    // The same names, new LVs: a new chain where the dead one was.
    await vg?.lv(old.baseLv, 32);
    await vg?.lv(old.topLv, 128);
    await makeChain(old.base, old.top, { virtualSize: '256M', stale: 2, shared: ['shared'], topOnly: ['toponly'], baseDataMiB: 2, topDataMiB: 24, topDataOffsetMiB: 8 });
    const chain = { ...old, before: { shared: await dirtyExtents(old.top, 'shared'), toponly: await dirtyExtents(old.top, 'toponly') } };
    await rawCopy(chain.top, chain.raw);
    const journal = await journalBytes(chain.stateDir, dead.jobId);
    const merged = await runCli(['merge', '--top', chain.top, '--base', chain.base], chain.env);
    expect(merged.exitCode, merged.stderr).to.equal(0);
    expect(merged.stdout, 'a new merge, not the dead job finished').not.to.match(/finished the merge that job/);
    expect(merged.stderr).to.match(new RegExp(`job ${dead.jobId} .*is stale and was not used`));
    await expectMerged(chain);
    expect(await journalBytes(chain.stateDir, dead.jobId), 'the stale journal never changed').to.equal(journal);
    const { status } = await statusOf(chain.base, chain.env);
    expect([status.state, status.stale.map((j) => j.jobId)]).to.deep.equal(['idle', [dead.jobId]]);
    expect(status.stale[0]?.reason).to.match(/another LV now .*made again/);
    // The journal as the current release writes it (lv:VG/LV): told apart by the LV's creation time.
    await asEarlierRelease(chain.stateDir, dead.jobId);
    expect((await statusOf(chain.base, chain.env)).status.stale[0]?.reason).to.match(/came into being at .* after the record was made/);
    const cleared = await clearStale(dead.jobId, chain.env);
    expect(cleared.run.exitCode, cleared.run.stderr).to.equal(0);
    expect(await jobFolders(chain.stateDir)).to.deep.equal([]);
  });

  it('keeps a job waiting while lvs fails (exit 5) and resumes it once lvs works; a removed LV ends a job as volume-deleted', async () => {
    const chain = await lvChain();
    const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--rate-limit', String(16 * 1024 * 1024)], { ...chain.env, VOLMERGE_CRASH_AT: 'commit:during:40' });
    expect(crashed.signal).to.equal('SIGKILL');
    const bin = ws.path('lvm-bin');
    await fakeTool(bin, 'lvs', 'failing-command');
    process.env.FAKE_FAILURE_MESSAGE = '  lvs: device-mapper is having a bad day';
    process.env.VOLMERGE_LVM_BIN_DIR = bin;
    const resumable: ResumableJob[] = [];
    const updates: RecoveredJob[] = [];
    const stop = new AbortController();
    try {
      const found = await recoverJobs(chain.stateDir, { resume: (job) => resumable.push(job), onUpdate: (job) => updates.push(job), retryDelayMs: 200, signal: stop.signal });
      expect(found.map((j) => j.state)).to.deep.equal(['waiting']);
      await until(() => updates.length >= 3, 'more probes while lvs fails', 20_000);
      expect(resumable).to.deep.equal([]);
      delete process.env.VOLMERGE_LVM_BIN_DIR;
      await until(() => resumable.length === 1, 'the resume once lvs works', 20_000);
    } finally {
      stop.abort();
    }
    const job = resumable[0] as ResumableJob;
    expect((await runMergeJob({ ...job.request, jobId: job.jobId, stateDir: chain.stateDir })).status).to.equal('done');
    await expectMerged(chain);

    // Another chain, crashed, whose top LV is removed while it waits: volume-deleted, and the LV stays gone.
    const second = await lvChain();
    const crashedAgain = await runCli(['merge', '--top', second.top, '--base', second.base, '--rate-limit', String(16 * 1024 * 1024)], { ...second.env, VOLMERGE_CRASH_AT: 'commit:during:40' });
    expect(crashedAgain.signal).to.equal('SIGKILL');
    await vg?.removeLv(second.topLv);
    const ended = await recoverJobs(second.stateDir, { resume: () => expect.fail('nothing to resume') });
    expect(ended.map((j) => [j.state, j.error?.code])).to.deep.equal([['failed', 'volume-deleted']]);
    const lvs = await execa('lvs', [`${second.vgName}/${second.topLv}`], { reject: false });
    expect(lvs.exitCode, 'the removed LV was not recreated').not.to.equal(0);
    const [entry] = await scanJournals(second.stateDir);
    expect(entry && 'journal' in entry ? entry.journal.state : undefined).to.equal('failed');
  });
});
