// The agent killed mid-job (its whole process group, as a host crash would) and started again: its journaled jobs
// finish with whole bitmaps, a job whose top vanished meanwhile ends volume-deleted, a corrupt journal needs attention.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { covers, dirtyExtents, type Extent } from '../helpers/dirty-map.js';
import { bitmapsIn, expectCheckClean, sameData } from '../helpers/images.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, mergeParams } from '../helpers/agent-harness.js';

const MiB = 1024 * 1024;

describe('agent killed mid-merge, then started again', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess | undefined;
  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('finishes the killed jobs, ends the one whose top was removed as volume-deleted, flags a corrupt journal, and keeps serving', async () => {
    const env = { VOLMERGE_LOCK_DIR: join(workspace.dir, 'locks') };
    agent = await AgentProcess.start(workspace, ['--max-jobs', '2'], { ...env, VOLMERGE_TEST_COMMIT_RATE: String(8 * MiB) });
    const spec = { virtualSize: '256M', stale: 2, shared: ['shared'], topOnly: ['backup'], baseDataMiB: 4, topDataMiB: 32, topDataOffsetMiB: 2 };
    const kept = await workspace.chain(spec);
    const doomed = await workspace.chain(spec);
    const before: Record<string, Extent[]> = { shared: await dirtyExtents(kept.top, 'shared'), backup: await dirtyExtents(kept.top, 'backup') };
    const keptJob = mergeParams(kept);
    const doomedJob = mergeParams(doomed);
    await agent.client.result('SDM.merge', keptJob);
    await agent.client.result('SDM.merge', doomedJob);
    for (const id of [keptJob.job_id, doomedJob.job_id]) await agent.waitFor(id, (j) => j.step === 'commit' && j.progress > 10);

    await agent.killHard(); // returns once the agent's qemu-img children are gone too
    agent = undefined;
    await rm(doomed.top);
    const brokenId = randomUUID();
    const broken = join(workspace.stateDir, 'jobs', brokenId);
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'journal.json'), 'not json at all');

    agent = await AgentProcess.start(workspace, [], env);
    const done = await agent.finished(keptJob.job_id);
    expect(done.status, JSON.stringify(done)).to.equal('done');
    expect(await sameData(kept.base, kept.raw), 'base reads as top did').to.equal(true);
    const bitmaps = await bitmapsIn(kept.base);
    expect(bitmaps.map((b) => b.name).sort()).to.deep.equal(['backup', 'shared']);
    for (const bitmap of bitmaps) expect(bitmap.flags, bitmap.name).to.deep.equal(['auto']);
    for (const name of ['backup', 'shared']) expect(covers(await dirtyExtents(kept.base, name), before[name] ?? []), name).to.equal(true);
    for (const bitmap of await bitmapsIn(kept.top)) expect(bitmap.flags, `top's ${bitmap.name}`).not.to.include('in-use');
    await expectCheckClean(kept.base, 'base');
    await expectCheckClean(kept.top, 'top');

    const deleted = await agent.finished(doomedJob.job_id);
    expect(deleted.status).to.equal('failed');
    expect(deleted.error?.name).to.equal('volume-deleted');
    expect(await access(doomed.top).then(() => true, () => false), 'the removed top was not recreated').to.equal(false);

    const attention = await agent.finished(brokenId);
    expect(attention.status).to.equal('failed');
    expect(attention.error?.name).to.equal('needs-attention');
    expect(attention.error?.message).to.contain(join(broken, 'journal.json'));
    expect(await agent.client.result('Host.ping')).to.have.property('name', 'volmerge');
  });
});
