// The real agent merging file-domain chains over its socket: done with the right data and bitmaps, progress, abort before and during the commit.
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checksums } from '../helpers/cli.js';
import { bitmapsIn, sameData } from '../helpers/images.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, type JobView, mergeParams } from '../helpers/agent-harness.js';
import { fakeTool } from '../helpers/fake-tools.js';

const MiB = 1024 * 1024;

async function generationOf(base: string): Promise<string | undefined> {
  return readFile(`${base}.volmerge-gen`, 'utf8').catch(() => undefined);
}

/** Base holds exactly these bitmaps, each enabled and none in-use. */
async function expectValidBitmaps(base: string, names: string[]): Promise<void> {
  const bitmaps = await bitmapsIn(base);
  expect(bitmaps.map((b) => b.name).sort()).to.deep.equal([...names].sort());
  for (const bitmap of bitmaps) expect(bitmap.flags, bitmap.name).to.include('auto').and.not.include('in-use');
}

describe('agent: merges on a file domain', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess | undefined;

  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('runs SDM.merge as a job that ends done with top data and bitmaps in base, and bumps the generation', async () => {
    agent = await AgentProcess.start(workspace);
    const chain = await workspace.chain({ virtualSize: '128M', stale: 2, shared: ['shared'], topOnly: ['backup'], baseDataMiB: 4, topDataMiB: 8, topDataOffsetMiB: 2 });
    const params = mergeParams(chain, undefined, { base_generation: 0 });
    expect(await agent.client.result('SDM.merge', params)).to.equal(true);
    const job = await agent.finished(params.job_id);
    expect(job).to.deep.include({ id: params.job_id, job_type: 'storage', description: 'merge_subchain', status: 'done', progress: 100 });
    expect(job.error).to.equal(undefined);
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
    const bitmaps = await bitmapsIn(chain.base);
    expect(bitmaps.map((b) => b.name).sort()).to.deep.equal(['backup', 'shared']);
    for (const bitmap of bitmaps) expect(bitmap.flags).to.include('auto').and.not.include('in-use');
    expect(await generationOf(chain.base)).to.equal('1\n');

    expect(await agent.client.result('Job.delete', { job_id: params.job_id })).to.equal(true);
    expect(await agent.jobs()).to.deep.equal({});
  });

  it("with merge_bitmaps false (vdsm's default) drops top-only bitmaps, still merges the one base shares, and says so in the job", async () => {
    agent = await AgentProcess.start(workspace);
    const chain = await workspace.chain({ virtualSize: '128M', stale: 2, shared: ['shared'], topOnly: ['backup'], baseDataMiB: 4, topDataMiB: 8, topDataOffsetMiB: 2 });
    const params = { ...mergeParams(chain), merge_bitmaps: false };
    expect(await agent.client.result('SDM.merge', params)).to.equal(true);
    const job = await agent.finished(params.job_id);
    expect(job.status, JSON.stringify(job)).to.equal('done');
    expect(job.result?.dropped_bitmaps).to.deep.equal(['backup']);
    expect(job.result?.used_size).to.be.a('number').and.to.be.greaterThan(0);
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
    await expectValidBitmaps(chain.base, ['shared']);
  });

  it('reports commit progress that grows while the commit runs', async () => {
    agent = await AgentProcess.start(workspace, [], { VOLMERGE_TEST_COMMIT_RATE: String(16 * MiB) });
    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 64 });
    const params = mergeParams(chain);
    await agent.client.result('SDM.merge', params);
    const seen = await agent.waitFor(params.job_id, (j) => ['done', 'failed', 'aborted'].includes(j.status), 60_000, 20);
    const last = seen[seen.length - 1] as JobView;
    expect(last.status, JSON.stringify(last)).to.equal('done');
    const progress = seen.map((j) => j.progress);
    for (let i = 1; i < progress.length; i += 1) expect(progress[i]).to.be.at.least(progress[i - 1] ?? 0);
    const midway = new Set(seen.filter((j) => j.step === 'commit' && j.progress > 0 && j.progress < 100).map((j) => j.progress));
    expect([...midway], `progress seen: ${[...new Set(progress)].join(', ')}`).to.have.length.of.at.least(2);
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
  });

  it('aborts a job before the commit: it ends aborted and nothing has changed', async () => {
    // A qemu-img that is slow to measure keeps the job in its inspection, before any change, long enough to abort it.
    const slowQemuImg = await fakeTool(join(workspace.dir, 'bin'), 'qemu-img', 'slow-measure-qemu-img');
    agent = await AgentProcess.start(workspace, [], { VOLMERGE_QEMU_IMG: slowQemuImg });
    const chain = await workspace.chain({ virtualSize: '64M', stale: 1, shared: ['shared'], topDataMiB: 4 });
    const before = await checksums([chain.top, chain.base]);
    const params = mergeParams(chain);
    await agent.client.result('SDM.merge', params);
    await agent.waitFor(params.job_id, (j) => j.status === 'running');
    expect(await agent.client.result('Job.abort', { job_id: params.job_id })).to.equal(true);
    const aborting = await agent.job(params.job_id);
    expect(aborting.status, 'vdsm has no "aborting": an abort in progress is running').to.be.oneOf(['running', 'aborted']);
    if (aborting.status === 'running') expect(aborting.aborting, JSON.stringify(aborting)).to.equal(true);
    const job = await agent.finished(params.job_id);
    expect(job.status).to.equal('aborted');
    expect(job.error).to.include({ name: 'aborted', code: 3128 });
    expect(job.step).to.equal('inspect');
    expect(await checksums([chain.top, chain.base])).to.deep.equal(before);
    expect(await generationOf(chain.base)).to.equal(undefined);
    const abortAgain = await agent.client.call('Job.abort', { job_id: params.job_id });
    expect(abortAgain).to.have.nested.property('error.data.name', 'job-not-active');
  });

  it('aborts a job during the commit: qemu-img is stopped, top still reads the same, and a later merge finishes it', async () => {
    agent = await AgentProcess.start(workspace, [], { VOLMERGE_TEST_COMMIT_RATE: String(8 * MiB) });
    const chain = await workspace.chain({ virtualSize: '64M', stale: 1, shared: ['shared'], topOnly: ['backup'], baseDataMiB: 8, topDataMiB: 64 });
    const params = mergeParams(chain, undefined, { base_generation: 0 });
    await agent.client.result('SDM.merge', params);
    await agent.waitFor(params.job_id, (j) => j.step === 'commit' && j.progress > 0);
    expect(await agent.client.result('Job.abort', { job_id: params.job_id })).to.equal(true);
    const job = await agent.finished(params.job_id, 30_000);
    expect(job.status, JSON.stringify(job)).to.equal('aborted');
    expect(job.progress).to.be.below(100);
    expect(job.error?.message).to.match(/qemu-img commit was stopped|aborted/);
    expect(await sameData(chain.top, chain.raw)).to.equal(true);
    expect(await generationOf(chain.base)).to.equal(undefined);

    // A later merge of the same chain (here by an agent without the slow commit), with the same generation, finishes it.
    await agent.stop();
    agent = await AgentProcess.start(workspace);
    const again = mergeParams(chain, undefined, { base_generation: 0 });
    await agent.client.result('SDM.merge', again);
    const done = await agent.finished(again.job_id);
    expect(done.status, JSON.stringify(done)).to.equal('done');
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
    await expectValidBitmaps(chain.base, ['backup', 'shared']);
    expect(await generationOf(chain.base)).to.equal('1\n');
  });

  it('finishes, under the same job id, a merge whose agent was killed mid-commit, once the agent is back', async () => {
    agent = await AgentProcess.start(workspace, [], { VOLMERGE_TEST_COMMIT_RATE: String(8 * MiB) });
    const chain = await workspace.chain({ virtualSize: '64M', stale: 1, shared: ['shared'], topOnly: ['backup'], baseDataMiB: 8, topDataMiB: 64 });
    const params = mergeParams(chain, undefined, { base_generation: 0 });
    await agent.client.result('SDM.merge', params);
    await agent.waitFor(params.job_id, (j) => j.step === 'commit' && j.progress > 0);
    await agent.killHard();
    expect(await sameData(chain.top, chain.raw)).to.equal(true);

    agent = await AgentProcess.start(workspace);
    const job = await agent.finished(params.job_id);
    expect(job.status, JSON.stringify(job)).to.equal('done');
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
    await expectValidBitmaps(chain.base, ['backup', 'shared']);
    expect(await generationOf(chain.base)).to.equal('1\n');
    const replay = await agent.client.call('SDM.merge', mergeParams(chain, undefined, { base_generation: 0 }));
    expect(replay, 'the old generation is refused once the merge is done').to.have.nested.property('error.data.name', 'generation-mismatch');
  });
});
