// Start-up recovery (what the agent calls): crashed jobs resume from their first unfinished step; a volume that is gone
// ends its job as volume-deleted with nothing recreated; a failed lvs never means gone (the job waits and is retried);
// an unreadable journal makes only that job need attention.
import { expect } from 'chai';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../../src/errors.js';
import { configureLog } from '../../src/log.js';
import { runMergeJob } from '../../src/host/run-merge.js';
import { HostJobStore, readJournal, scanJournals, writeJournal } from '../../src/engine/host-store.js';
import type { StoredJournal } from '../../src/engine/store.js';
import { type Journal } from '../../src/engine/journal.js';
import { recoverJobs, type RecoveredJob, type ResumableJob } from '../../src/host/recovery.js';
import { checksum, runCli } from '../helpers/cli.js';
import { makeChain } from '../helpers/images.js';
import { exists, until } from '../helpers/wait.js';
import { Workspace } from '../helpers/workspace.js';
import { expectMerged, prepareChain, type PreparedChain } from '../helpers/crash-harness.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { fakeTool } from '../helpers/fake-tools.js';

const SLOW_COMMIT = String(16 * 1024 * 1024);

async function crashInsideCommit(chain: PreparedChain): Promise<Journal> {
  const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--rate-limit', SLOW_COMMIT], { ...chain.env, VOLMERGE_CRASH_AT: 'commit:during:40' });
  expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
  const [entry] = await scanJournals(chain.stateDir);
  if (!entry || !('journal' in entry)) throw new Error('the crashed merge left no readable journal');
  return entry.journal;
}

describe('start-up recovery of crashed jobs (recoverJobs)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  const savedEnv = { ...process.env };
  before(() => configureLog('error'));
  after(() => configureLog('warn'));
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-recovery-');
  beforeEach(() => {
    process.env.VOLMERGE_LOCK_DIR = ws.path('locks');
  });
  afterEach(() => {
    process.env = { ...savedEnv };
  });

  it('resumes a job killed inside the commit from that step, and the merge finishes with data and bitmaps whole', async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    const resumable: ResumableJob[] = [];
    const found = await recoverJobs(chain.stateDir, { resume: (job) => resumable.push(job) });
    expect(found).to.deep.equal([{ jobId: journal.jobId, state: 'resuming', top: chain.top, base: chain.base, fromStep: 'commit' }]);
    expect(resumable).to.deep.equal([{ jobId: journal.jobId, request: { top: chain.top, base: chain.base, leafRoom: 0, rateLimit: Number(SLOW_COMMIT) }, fromStep: 'commit' }]);
    const job = resumable[0] as ResumableJob;
    const outcome = await runMergeJob({ ...job.request, jobId: job.jobId, stateDir: chain.stateDir });
    expect(outcome.status).to.equal('done');
    expect(outcome.resumed).to.deep.equal({ jobId: journal.jobId, fromStep: 'commit' });
    await expectMerged(chain);
  });

  it('leaves a job whose state another host holds alone, and hands a job on only once its volumes and its store are put back', async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    const events: string[] = [];
    // A store as a shared VG's looks to recovery: one job LV is held by another host (its read is refused), closing
    // puts back what the store activated.
    class OtherHostHoldsOne extends HostJobStore {
      override async keys(): Promise<string[]> {
        return ['volmerge_job_elsewhere', ...(await super.keys())];
      }
      override async read(key: string): Promise<StoredJournal | undefined> {
        if (key === 'volmerge_job_elsewhere') throw new VolmergeError('locked-by-other-host', `job LV vgshared/${key} is locked by another host`);
        return super.read(key);
      }
      override async close(): Promise<void> {
        events.push('close');
      }
    }
    const open = (): HostJobStore => new OtherHostHoldsOne(chain.stateDir);
    const resume = (job: ResumableJob): void => void events.push(`resume ${job.jobId} from ${job.fromStep}`);

    const found = await recoverJobs(open, {
      resume,
      holdVolumes: async (held) => {
        events.push(`hold ${held.jobId}`);
        return async () => void events.push(`release ${held.jobId}`);
      },
    });
    expect(found.map((j) => [j.jobId, j.state]), 'the other host\'s job is not ours, not even as needing attention').to.deep.equal([[journal.jobId, 'resuming']]);
    expect(events).to.deep.equal([`hold ${journal.jobId}`, `release ${journal.jobId}`, 'close', `resume ${journal.jobId} from commit`]);

    // Volumes that cannot be held (another host uses them): the job waits, nothing is resumed, the store is closed all the same.
    events.length = 0;
    const stop = new AbortController();
    try {
      const waiting = await recoverJobs(open, {
        resume,
        signal: stop.signal,
        holdVolumes: () => Promise.reject(new VolmergeError('locked-by-other-host', 'base vgshared/c5base is locked by another host')),
      });
      expect(waiting.map((j) => [j.jobId, j.state, j.error?.code])).to.deep.equal([[journal.jobId, 'waiting', 'locked-by-other-host']]);
      expect(events).to.deep.equal(['close']);
    } finally {
      stop.abort();
    }
    expect((await runMergeJob({ jobId: journal.jobId, stateDir: chain.stateDir, top: chain.top, base: chain.base })).status).to.equal('done');
    await expectMerged(chain);
  });

  for (const role of ['top', 'base'] as const) {
    it(`ends the job as volume-deleted when its ${role} was removed while it waited, and recreates nothing`, async () => {
      const chain = await prepareChain(ws, 'file');
      const journal = await crashInsideCommit(chain);
      const other = role === 'top' ? chain.base : chain.top;
      await rm(chain[role]);
      const otherSum = await checksum(other);
      const resumable: ResumableJob[] = [];
      const found = await recoverJobs(chain.stateDir, { resume: (job) => resumable.push(job) });
      expect(resumable, 'nothing to resume').to.deep.equal([]);
      expect(found).to.have.length(1);
      expect(found[0]?.state).to.equal('failed');
      expect(found[0]?.error?.code).to.equal('volume-deleted');
      expect(found[0]?.error?.message).to.contain(`${role} ${chain[role]} is gone`);
      const after = await readJournal(join(chain.stateDir, 'jobs', journal.jobId, 'journal.json'));
      expect(after.state).to.equal('failed');
      expect(after.error?.code).to.equal('volume-deleted');
      expect(await exists(chain[role]), `${role} was not recreated`).to.equal(false);
      expect(await checksum(other), `the remaining ${role === 'top' ? 'base' : 'top'} was not touched`).to.equal(otherSum);

      // The CLI, asked to merge the same chain again, ends the same way and still recreates nothing.
      if (role === 'top') {
        const again = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--json'], chain.env);
        expect(again.exitCode).to.equal(1);
        expect((JSON.parse(again.stdout) as { error: { code: string } }).error.code).to.equal('volume-deleted');
        expect(await exists(chain.top)).to.equal(false);
        expect(await checksum(chain.base)).to.equal(otherSum);
      }
    });
  }

  it('does not fail a job while lvs fails (exit 5): it waits, is probed again, and is resumed once lvs answers', async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    // Make the journal say base is an LV, so that recovery must ask lvs about it.
    const asLv: Journal = {
      ...journal,
      volumes: { ...journal.volumes, base: { ...journal.volumes.base, kind: 'lv', identity: 'lv:vgtest/base', lv: { vg: 'vgtest', name: 'base' } } },
    };
    await writeJournal(chain.stateDir, asLv);
    const bin = ws.path('lvm-bin');
    const mode = join(bin, 'mode');
    const calls = join(bin, 'calls');
    const report = join(bin, 'report.json');
    await fakeTool(bin, 'lvs', 'switchable-lvs');
    await writeFile(mode, 'fail\n');
    await writeFile(
      report,
      `${JSON.stringify({
        report: [{ lv: [{ lv_name: 'base', vg_name: 'vgtest', lv_size: '268435456', lv_tags: '', vg_extent_size: '4194304', vg_free: '0', lv_path: '/dev/vgtest/base' }] }],
      })}\n`,
    );
    Object.assign(process.env, { FAKE_LVS_MODE: mode, FAKE_LVS_CALLS: calls, FAKE_LVS_REPORT: report, VOLMERGE_LVM_BIN_DIR: bin });

    const resumable: ResumableJob[] = [];
    const updates: RecoveredJob[] = [];
    const stop = new AbortController();
    try {
      const found = await recoverJobs(chain.stateDir, { resume: (job) => resumable.push(job), onUpdate: (job) => updates.push(job), retryDelayMs: 100, signal: stop.signal });
      expect(found).to.have.length(1);
      expect(found[0]?.state).to.equal('waiting');
      expect(found[0]?.error?.message).to.match(/lvs failed \(exit 5\)/);
      expect(resumable).to.deep.equal([]);
      await until(() => updates.length >= 3, 'two more probes while lvs fails');
      expect(updates.every((u) => u.state === 'waiting'), 'still waiting, never failed').to.equal(true);
      expect((await readJournal(join(chain.stateDir, 'jobs', journal.jobId, 'journal.json'))).state, 'journal untouched').to.equal('running');

      await writeFile(mode, 'ok\n');
      await until(() => resumable.length === 1, 'the resume once lvs answers');
      expect(resumable[0]).to.deep.include({ jobId: journal.jobId, fromStep: 'commit' });
      expect(updates[updates.length - 1]?.state).to.equal('resuming');
      expect((await readFile(calls, 'utf8')).trim().split('\n').length).to.be.greaterThan(2);
    } finally {
      stop.abort();
    }
    // Put the journal back as it was (base is a file here) and let the resumed job finish.
    await writeJournal(chain.stateDir, journal);
    delete process.env.VOLMERGE_LVM_BIN_DIR;
    const outcome = await runMergeJob({ jobId: journal.jobId, stateDir: chain.stateDir, top: chain.top, base: chain.base });
    expect(outcome.status).to.equal('done');
    await expectMerged(chain);
  });

  it('does not fail a job while qemu-img fails: it waits and is resumed once qemu-img answers', async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    process.env.VOLMERGE_QEMU_IMG = await fakeTool(ws.path('broken-bin'), 'qemu-img', 'failing-command');
    process.env.FAKE_FAILURE_MESSAGE = 'qemu-img: something went wrong';
    const resumable: ResumableJob[] = [];
    const updates: RecoveredJob[] = [];
    const stop = new AbortController();
    try {
      const found = await recoverJobs(chain.stateDir, { resume: (job) => resumable.push(job), onUpdate: (job) => updates.push(job), retryDelayMs: 100, signal: stop.signal });
      expect(found.map((j) => [j.state, j.error?.code])).to.deep.equal([['waiting', 'qemu-failed']]);
      await until(() => updates.length >= 2, 'another probe while qemu-img fails');
      expect(resumable).to.deep.equal([]);
      delete process.env.VOLMERGE_QEMU_IMG;
      await until(() => resumable.length === 1, 'the resume once qemu-img answers');
    } finally {
      stop.abort();
    }
    expect((await runMergeJob({ jobId: journal.jobId, stateDir: chain.stateDir, top: chain.top, base: chain.base })).status).to.equal('done');
    await expectMerged(chain);
  });

  for (const role of ['top', 'base'] as const) {
    it(`ends a running CLI merge as volume-deleted when its ${role} is removed during the commit`, async () => {
      const chain = await prepareChain(ws, 'file');
      const merge = runCli(['merge', '--top', chain.top, '--base', chain.base, '--json', '--rate-limit', String(8 * 1024 * 1024)], chain.env);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [entry] = await scanJournals(chain.stateDir).catch(() => []);
        if (entry && 'journal' in entry && entry.journal.steps.commit) break;
        if (Date.now() > deadline) throw new Error('the merge never reached the commit');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await rm(chain[role]);
      const result = await merge;
      expect(result.exitCode, result.stderr).to.equal(1);
      const output = JSON.parse(result.stdout) as { error: { code: string; message: string } };
      expect(output.error.code, output.error.message).to.equal('volume-deleted');
      expect(output.error.message).to.contain(`${role} ${chain[role]} is gone`);
      expect(await exists(chain[role]), `${role} was not recreated`).to.equal(false);
    });
  }

  it('flags a job whose journal is corrupt as needing attention; the other jobs go on', async () => {
    const chain = await prepareChain(ws, 'file');
    const journal = await crashInsideCommit(chain);
    const broken = join(chain.stateDir, 'jobs', 'broken-job');
    await mkdir(broken);
    await writeFile(join(broken, 'journal.json'), '{"version": 1, "jobId": "broken-job", "state": "runn');
    const resumable: ResumableJob[] = [];
    const found = await recoverJobs(chain.stateDir, { resume: (job) => resumable.push(job) });
    const byId = new Map(found.map((job) => [job.jobId, job]));
    expect(byId.get('broken-job')?.state).to.equal('needs-attention');
    expect(byId.get('broken-job')?.error?.code).to.equal('needs-attention');
    expect(byId.get('broken-job')?.error?.message).to.contain(join(broken, 'journal.json'));
    expect(byId.get(journal.jobId)?.state).to.equal('resuming');
    const outcome = await runMergeJob({ jobId: journal.jobId, stateDir: chain.stateDir, top: chain.top, base: chain.base });
    expect(outcome.status).to.equal('done');
    await expectMerged(chain);
    expect(await exists(join(broken, 'journal.json')), 'the corrupt journal is left for a person').to.equal(true);
  });

  it('refuses, changing nothing, a marked base whose journal is not in the state folder, and a mid-merge base with another top', async () => {
    const chain = await prepareChain(ws, 'file');
    await crashInsideCommit(chain);
    const sums = [await checksum(chain.base), await checksum(chain.top)];
    const elsewhere = { ...chain.env, VOLMERGE_STATE_DIR: ws.path('other-state') };
    for (const extra of [[], ['--dry-run']]) {
      const refused = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--json', ...extra], elsewhere);
      expect(refused.exitCode).to.equal(1);
      const error = (JSON.parse(refused.stdout) as { error: { code: string; message: string } }).error;
      expect(error.code).to.equal('needs-attention');
      expect(error.message).to.contain('marked mid-merge').and.to.contain(`its journal may be in ${chain.stateDir}`);
    }
    const status = JSON.parse((await runCli(['status', '--base', chain.base, '--json'], elsewhere)).stdout) as { state: string };
    expect(status.state).to.equal('needs-attention');

    const otherTop = ws.path('other-top.qcow2');
    await makeChain(ws.path('unused-base.qcow2'), otherTop, { virtualSize: '256M' });
    const wrongTop = await runCli(['merge', '--top', otherTop, '--base', chain.base, '--json'], chain.env);
    expect(wrongTop.exitCode).to.equal(1);
    expect((JSON.parse(wrongTop.stdout) as { error: { code: string } }).error.code).to.equal('mid-merge');
    expect([await checksum(chain.base), await checksum(chain.top)], 'refusals changed nothing').to.deep.equal(sums);

    const finish = await runCli(['merge', '--top', chain.top, '--base', chain.base], chain.env);
    expect(finish.exitCode, finish.stderr).to.equal(0);
    await expectMerged(chain);
  });

  it('a job accepted earlier whose top vanished before it ran ends as volume-deleted, writing nothing', async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await makeChain(base, top, { virtualSize: '64M', shared: ['shared'], topDataMiB: 2 });
    await rm(top);
    const stateDir = ws.path('state');
    let thrown: unknown;
    try {
      await runMergeJob({ jobId: 'pending-1', stateDir, top, base, volumesValidated: true });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(VolmergeError);
    expect((thrown as VolmergeError).code).to.equal('volume-deleted');
    expect(await exists(top)).to.equal(false);
    expect(await exists(join(stateDir, 'jobs', 'pending-1')), 'no journal for a job that never began').to.equal(false);
  });
});
