// A merge that the command line started and a crash left unfinished, finished by the agent's start-up recovery: the
// engine sees it under a UUID (vdsm's job ids are UUIDs), with the journal's cli-PID-MS id beside it, and either id works.
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { uuidForCliJobId } from '../../src/agent/job-ids.js';
import { sameData } from '../helpers/images.js';

import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest } from '../helpers/agent-harness.js';
import { runCli } from '../helpers/cli.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('agent: a recovered command-line merge under a UUID', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('finishes a crashed CLI merge as a job with a UUID and cli_job_id, found, listed and deleted by either id', async () => {
    const env = { VOLMERGE_STATE_DIR: workspace.stateDir, VOLMERGE_LOCK_DIR: join(workspace.dir, 'locks') };
    const chain = await workspace.chain({ virtualSize: '64M', shared: ['shared'], topDataMiB: 16 });
    const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base], { ...env, VOLMERGE_CRASH_AT: 'commit:during' });
    expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
    const [cliId] = await readdir(join(workspace.stateDir, 'jobs'));
    expect(cliId).to.match(/^cli-\d+-\d+$/);
    const id = uuidForCliJobId(cliId ?? '');

    const agent = await AgentProcess.start(workspace, [], env);
    const job = await agent.finished(id);
    expect(job, JSON.stringify(job)).to.deep.include({ id, cli_job_id: cliId, status: 'done' });
    expect(job.id).to.match(UUID);
    expect(Object.keys(await agent.jobs())).to.deep.equal([id]);
    expect(await agent.jobs({ job_ids: [cliId] })).to.have.all.keys(id);
    expect(await sameData(chain.base, chain.raw)).to.equal(true);

    expect(await agent.client.result('Job.delete', { job_id: cliId })).to.equal(true);
    expect(await agent.jobs()).to.deep.equal({});
  });
});
