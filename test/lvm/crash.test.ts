// Crash safety on real LVM (npm run test:lvm runs it, in the test VM where device-mapper is missing): the mid-merge
// mark is an LV tag, an extension survives a crash, a commit killed early, midway or late leaves base's LV full of
// leaked clusters and the same command once more extends it again as far as they need and finishes (the LV is sized
// as the plan sizes it, so that nothing else leaves room for them), lvs failing at recovery only delays the job, a
// removed LV ends it as volume-deleted, an LV made again under the same name leaves the dead job stale.
import { expect } from 'chai';
import { execa } from 'execa';
import { configureLog } from '../../src/log.js';
import { runMergeJob } from '../../src/host/run-merge.js';
import { scanJournals } from '../../src/engine/host-store.js';
import { recoverJobs, type RecoveredJob, type ResumableJob } from '../../src/host/recovery.js';
import { roundUp } from '../../src/merge/sizes.js';
import { checkAgainst } from '../../src/schema.js';
import { expectMerged, prepareChain, type PreparedChain } from '../helpers/crash-harness.js';
import { checkOf, makeChain, rawCopy } from '../helpers/images.js';
import { dirtyExtents } from '../helpers/dirty-map.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';
import { until } from '../helpers/wait.js';
import { Workspace } from '../helpers/workspace.js';

import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { runCli } from '../helpers/cli.js';
import { fakeTool } from '../helpers/fake-tools.js';
import { asEarlierRelease, clearStale, jobFolders, journalBytes, killMidCommit, statusOf } from '../helpers/stale-chain.js';

const MiB = 1024 * 1024;
const SLOW_COMMIT = String(16 * MiB);

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

  /** The crash harness's chain on LVs: a 32 MiB base LV (too small: the merge must extend it) under a 128 MiB top LV. */
  async function lvChain(): Promise<PreparedChain & { vgName: string; baseLv: string; topLv: string }> {
    if (!vg) throw new Error('no VG');
    serial += 1;
    const baseLv = `base${serial}`;
    const topLv = `top${serial}`;
    const base = await vg.lv(baseLv, 32);
    const top = await vg.lv(topLv, 128);
    return { ...(await prepareChain(ws, { base, top })), vgName: vg.name, baseLv, topLv };
  }

  /** The plan the killed run journaled. */
  async function journaledPlan(chain: PreparedChain): Promise<{ neededSize: number; extendTo: number | null }> {
    const [entry] = await scanJournals(chain.stateDir);
    if (!entry || !('journal' in entry)) throw new Error('the killed merge left no readable journal');
    return entry.journal.plan;
  }

  for (const crashAt of ['extend:after', 'prune:during:50', 'commit:during:10', 'commit:during:50', 'commit:during:90', 'bitmaps:before']) {
    it(`marks base with an LV tag and finishes after a SIGKILL at ${crashAt}`, async () => {
      if (!vg) throw new Error('no VG');
      const chain = await lvChain();
      const args = ['merge', '--top', chain.top, '--base', chain.base];
      const crashed = await runCli([...args, '--rate-limit', SLOW_COMMIT], { ...chain.env, VOLMERGE_CRASH_AT: crashAt });
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      const marked = (await lvTags(chain.vgName, chain.baseLv)).filter((t) => t.startsWith('VOLMERGE_MERGING_'));
      expect(marked, 'the mark is an LV tag from the mark step on').to.have.length(crashAt === 'extend:after' || crashAt.startsWith('prune') ? 0 : 1);
      const killedAt = await vg.lvSize(chain.baseLv);
      let outgrown = false;
      if (crashAt.startsWith('commit:during')) {
        // Tight: the LV is exactly what the plan asked for, in whole extents, and the kill left clusters leaked in it.
        const planned = (await journaledPlan(chain)).neededSize;
        expect(killedAt, 'base LV sized as planned').to.equal(roundUp(planned, 4 * MiB));
        const { leaks } = await checkOf(chain.base);
        expect(leaks, 'base clusters leaked by the kill (the premise of this cell)').to.be.greaterThan(0);
        outgrown = planned + leaks * 64 * 1024 > killedAt;
      }
      const again = await runCli([...args, '--json'], chain.env);
      expect(again.exitCode, again.stderr).to.equal(0);
      const output = checkAgainst<{ usedSize: number; plan: { neededSize: number } }>('merge-result.schema.json', JSON.parse(again.stdout), 'volmerge merge --json');
      expect(output.usedSize, 'base used no more than the resumed run planned').to.be.at.most(output.plan.neededSize);
      const finalSize = await vg.lvSize(chain.baseLv);
      expect(finalSize, 'the LV holds what the resumed run planned').to.be.at.least(output.plan.neededSize);
      // Leaked clusters that outgrow the extent the plan rounded up to: the resumed run extends the LV again first.
      if (outgrown) expect(finalSize, 'extended again for the leaked clusters').to.be.greaterThan(killedAt);
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
    await makeChain(old.base, old.top, { virtualSize: '256M', stale: 2, shared: ['shared'], topOnly: ['toponly'], topDisabled: ['off'], baseDataMiB: 2, topDataMiB: 24, topDataOffsetMiB: 8 });
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
    const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--rate-limit', SLOW_COMMIT], { ...chain.env, VOLMERGE_CRASH_AT: 'commit:during:40' });
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
    const crashedAgain = await runCli(['merge', '--top', second.top, '--base', second.base, '--rate-limit', SLOW_COMMIT], { ...second.env, VOLMERGE_CRASH_AT: 'commit:during:40' });
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
