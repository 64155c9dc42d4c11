// The agent's drop_inconsistent (volmerge's extension of SDM.merge): a chain whose top's bitmaps a crashed writer left
// in-use is refused without it (the job fails bitmap-in-use, naming the parameter; every byte unchanged) and merged with
// it: the broken bitmaps gone from top and base, a bitmap made afterwards kept, the job's result naming the bitmaps lost.
import { expect } from 'chai';
import { checksums } from '../helpers/cli.js';
import { addBitmap, bitmapsIn, breakBitmaps, rawCopy, sameData, writeData } from '../helpers/images.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, mergeParams } from '../helpers/agent-harness.js';

describe('agent: SDM.merge with drop_inconsistent', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;

  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('fails the job without it (naming it, nothing changed) and merges with it, naming the bitmaps dropped', async () => {
    const agent = await AgentProcess.start(workspace);
    const chain = await workspace.chain({ virtualSize: '128M', stale: 1, shared: ['shared'], topOnly: ['toponly'], baseDataMiB: 4, topDataMiB: 8, topDataOffsetMiB: 2 });
    await breakBitmaps(chain.top);
    await addBitmap(chain.top, 'fresh');
    await writeData(chain.top, 64, 1, 0x82);
    await rawCopy(chain.top, chain.raw);
    const before = await checksums([chain.top, chain.base]);

    const refused = mergeParams(chain);
    expect(await agent.client.result('SDM.merge', refused)).to.equal(true);
    const failed = await agent.finished(refused.job_id);
    expect(failed.status, JSON.stringify(failed)).to.equal('failed');
    expect(failed.error).to.deep.include({ name: 'bitmap-in-use' });
    expect(failed.error?.message).to.contain('drop_inconsistent');
    expect(await checksums([chain.top, chain.base]), 'every byte unchanged').to.deep.equal(before);

    const wrongType = await agent.client.call('SDM.merge', { ...mergeParams(chain), drop_inconsistent: 'yes' });
    expect(wrongType, 'a non-boolean is refused by the params schema').to.have.nested.property('error.code', -32602);

    const params = { ...mergeParams(chain), drop_inconsistent: true };
    expect(await agent.client.result('SDM.merge', params)).to.equal(true);
    const job = await agent.finished(params.job_id);
    expect(job.status, JSON.stringify(job)).to.equal('done');
    expect(job.result).to.deep.include({ dropped_bitmaps: [], dropped_inconsistent: ['shared', 'toponly'] });
    expect(await sameData(chain.base, chain.raw), 'base reads as top did').to.equal(true);
    for (const image of [chain.base, chain.top]) {
      expect((await bitmapsIn(image)).map((b) => [b.name, b.flags]), `bitmaps of ${image}`).to.deep.equal([['fresh', ['auto']]]);
    }
  });
});
