// `volmerge clear-stale`: refuses a job that is not stale (nothing changed, and the merge still finishes), and clears a
// stale one whole whatever kills it: SIGKILL at each of its points, then the same command once more, leaves no journal,
// no half-cleared folder and no mark; Ctrl-C before the journal is moved away changes nothing, after it the clear ends.
import { expect } from 'chai';
import { readFile, rm } from 'node:fs/promises';
import { expectMerged, prepareChain, type PreparedChain } from '../helpers/crash-harness.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { runCli } from '../helpers/cli.js';
import { exists } from '../helpers/wait.js';
import { clearStale, jobFolders, journalBytes, killMidCommit } from '../helpers/stale-chain.js';
import type { Workspace } from '../helpers/workspace.js';

/** A merge killed inside the commit, then both volumes deleted (the mark sidecar left behind): a stale job. */
async function staleJob(ws: Workspace): Promise<{ chain: PreparedChain; jobId: string; journal: string; sidecar: string }> {
  const chain = await prepareChain(ws, 'file');
  const dead = await killMidCommit(chain);
  const sidecar = `${chain.base}.volmerge-merging`;
  expect(await exists(sidecar)).to.equal(true);
  await rm(chain.top);
  await rm(chain.base);
  return { chain, jobId: dead.jobId, journal: await journalBytes(chain.stateDir, dead.jobId), sidecar };
}

/** Nothing of the job is left: no journal, no .cleared- folder, no sidecar. */
async function expectNothingLeft(chain: PreparedChain, sidecar: string): Promise<void> {
  expect(await jobFolders(chain.stateDir)).to.deep.equal([]);
  expect(await exists(sidecar), 'the mark the job left beside its base is gone').to.equal(false);
}

describe('volmerge clear-stale', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-clear-');

  it('refuses a job that is not stale, changing nothing: the merge then finishes', async () => {
    const chain = await prepareChain(ws, 'file');
    const dead = await killMidCommit(chain);
    const journal = await journalBytes(chain.stateDir, dead.jobId);
    const sidecar = await readFile(`${chain.base}.volmerge-merging`, 'utf8');
    const { run, json } = await clearStale(dead.jobId, chain.env);
    expect(run.exitCode).to.equal(1);
    expect(json.error?.code).to.equal('not-stale');
    expect(json.error?.message).to.include(`finish it: volmerge merge --top ${chain.top} --base ${chain.base}`);
    expect(await journalBytes(chain.stateDir, dead.jobId)).to.equal(journal);
    expect(await readFile(`${chain.base}.volmerge-merging`, 'utf8')).to.equal(sidecar);
    const resumed = await runCli(['merge', '--top', chain.top, '--base', chain.base], chain.env);
    expect(resumed.exitCode, resumed.stderr).to.equal(0);
    await expectMerged(chain);
  });

  it('refuses a job it does not know', async () => {
    const { run, json } = await clearStale('cli-1-2', { VOLMERGE_STATE_DIR: ws.path('state'), VOLMERGE_LOCK_DIR: ws.path('locks') });
    expect(run.exitCode).to.equal(1);
    expect(json.error?.code).to.equal('no-such-job');
  });

  it('clears a stale job: its journal and the mark it left beside its deleted base', async () => {
    const { chain, jobId, sidecar } = await staleJob(ws);
    const { run, json } = await clearStale(jobId, chain.env);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(json.reason).to.match(/no such file/);
    expect(json.marks).to.deep.equal([sidecar]);
    await expectNothingLeft(chain, sidecar);
  });

  for (const point of ['clear-journal:before', 'clear-marks:before', 'clear-marks:after']) {
    it(`after a SIGKILL at ${point}, the same command once more clears it whole`, async () => {
      const { chain, jobId, journal, sidecar } = await staleJob(ws);
      const killed = await runCli(['clear-stale', '--job', jobId], { ...chain.env, VOLMERGE_CRASH_AT: point });
      expect(killed.signal, killed.stderr).to.equal('SIGKILL');
      if (point === 'clear-journal:before') {
        expect(await journalBytes(chain.stateDir, jobId), 'killed before it moved the journal: untouched').to.equal(journal);
      } else {
        expect(await jobFolders(chain.stateDir), 'moved out of sight, not yet deleted').to.deep.equal([`.cleared-${jobId}`]);
      }
      const { run, json } = await clearStale(jobId, chain.env);
      expect(run.exitCode, run.stderr).to.equal(0);
      expect(json.status).to.equal('cleared');
      expect(json.finishedEarlierRun === true).to.equal(point !== 'clear-journal:before');
      await expectNothingLeft(chain, sidecar);
    });
  }

  it('Ctrl-C before the journal is moved away: nothing changed, and the same command once more clears it', async () => {
    const { chain, jobId, journal, sidecar } = await staleJob(ws);
    const { run, json } = await clearStale(jobId, { ...chain.env, VOLMERGE_SIGNAL_AT: 'clear-journal:before:SIGINT' });
    expect(run.exitCode).to.equal(1);
    expect(json.error?.code).to.equal('aborted');
    expect(run.stderr).to.match(/SIGINT: stopping/);
    expect(await journalBytes(chain.stateDir, jobId)).to.equal(journal);
    expect(await exists(sidecar)).to.equal(true);
    expect((await clearStale(jobId, chain.env)).run.exitCode).to.equal(0);
    await expectNothingLeft(chain, sidecar);
  });

  it('SIGTERM after the journal is moved away: the clear is finished', async () => {
    const { chain, jobId, sidecar } = await staleJob(ws);
    const { run, json } = await clearStale(jobId, { ...chain.env, VOLMERGE_SIGNAL_AT: 'clear-marks:before:SIGTERM' });
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(json.status).to.equal('cleared');
    await expectNothingLeft(chain, sidecar);
  });
});
