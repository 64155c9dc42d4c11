// The agent's command line: `volmerge call` and `volmerge jobs` against a real agent, its socket, expiry, and a clean stop on SIGTERM.
import { expect } from 'chai';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkAgainst } from '../../src/schema.js';
import { volmerge } from '../helpers/cli.js';
import { sameData } from '../helpers/images.js';
import { exists, sleep } from '../helpers/wait.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, mergeParams } from '../helpers/agent-harness.js';
import { connectArgs, pkiOf, tlsAddressOf, tlsListenArgs } from '../helpers/agent-tls-harness.js';

const MiB = 1024 * 1024;

describe('agent: command line and lifecycle', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess | undefined;

  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('serves on a 0600 socket; volmerge call and volmerge jobs talk to it, on the socket and on TLS with the token', async () => {
    const tokenFile = join(workspace.dir, 'token');
    await writeFile(tokenFile, `${'ab'.repeat(16)}\n`, { mode: 0o600 });
    const pki = await pkiOf(workspace);
    agent = await AgentProcess.start(workspace, tlsListenArgs(pki, tokenFile));
    expect((await stat(workspace.socket)).mode & 0o777).to.equal(0o600);
    const socket = ['--socket', workspace.socket];

    const ping = await volmerge(['call', 'Host.ping', ...socket]);
    expect(ping.exitCode, ping.stderr).to.equal(0);
    expect(JSON.parse(ping.stdout)).to.have.property('name', 'volmerge');

    const unknown = await volmerge(['call', 'Host.reboot', '{}', ...socket]);
    expect(unknown.exitCode).to.equal(1);
    expect(JSON.parse(unknown.stdout)).to.have.property('code', -32601);
    expect(unknown.stderr).to.match(/Host.reboot failed \(code -32601\)/);

    const badJson = await volmerge(['call', 'Host.getJobs', '{nope', ...socket]);
    expect(badJson.exitCode).to.equal(2);

    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 2 });
    const params = mergeParams(chain);
    const started = await volmerge(['call', 'SDM.merge', JSON.stringify(params), ...socket]);
    expect(started.exitCode, started.stderr).to.equal(0);
    expect(started.stdout.trim()).to.equal('true');
    await agent.finished(params.job_id);

    const table = await volmerge(['jobs', ...socket]);
    expect(table.exitCode, table.stderr).to.equal(0);
    expect(table.stdout).to.match(/^ID\s+STATUS\s+PROGRESS\s+STEP/);
    expect(table.stdout).to.match(new RegExp(`${params.job_id}\\s+done\\s+100\\.0%`));

    const json = await volmerge(['jobs', '--json', ...socket]);
    const jobs = checkAgainst<Record<string, { status: string }>>('rpc-result-host-get-jobs.schema.json', JSON.parse(json.stdout), 'volmerge jobs --json');
    expect(jobs[params.job_id]?.status).to.equal('done');

    const overTls = await volmerge(['jobs', '--json', ...connectArgs(tlsAddressOf(agent), pki), '--token-file', tokenFile]);
    expect(overTls.exitCode, overTls.stderr).to.equal(0);
    expect(JSON.parse(overTls.stdout)).to.have.property(params.job_id);
    const noToken = await volmerge(['call', 'Host.ping', ...connectArgs(tlsAddressOf(agent), pki)]);
    expect(noToken.exitCode).to.equal(1);
    expect(JSON.parse(noToken.stdout)).to.have.property('code', -32001);

    const nobody = await volmerge(['jobs', '--socket', join(workspace.dir, 'nobody.sock')]);
    expect(nobody.exitCode).to.equal(1);
    expect(nobody.stderr).to.match(/cannot reach the agent at .*nobody\.sock/);
  });

  it('refuses to start on a socket where another agent serves, and takes over a stale one', async () => {
    agent = await AgentProcess.start(workspace);
    const second = await volmerge(['agent', '--socket', workspace.socket, '--state-dir', workspace.stateDir]);
    expect(second.exitCode).to.equal(1);
    expect(second.stderr).to.match(/another agent is serving on/);
    expect(await agent.client.result('Host.ping')).to.have.property('name', 'volmerge');

    agent.child.kill('SIGKILL');
    await agent.exit();
    expect(await exists(workspace.socket)).to.equal(true);
    agent = await AgentProcess.start(workspace);
    expect(await agent.client.result('Host.ping')).to.have.property('name', 'volmerge');
  });

  it('forgets finished jobs after --job-ttl', async () => {
    agent = await AgentProcess.start(workspace, ['--job-ttl', '1']);
    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 1 });
    const params = mergeParams(chain);
    await agent.client.result('SDM.merge', params);
    await agent.finished(params.job_id);
    const deadline = Date.now() + 20_000;
    while ((await agent.jobs())[params.job_id] && Date.now() < deadline) await sleep(200);
    expect(await agent.jobs()).to.deep.equal({});
  });

  it('on SIGTERM lets a running merge finish, then exits 0 and removes its socket', async () => {
    agent = await AgentProcess.start(workspace, [], { VOLMERGE_TEST_COMMIT_RATE: String(16 * MiB) });
    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 48 });
    const params = mergeParams(chain);
    await agent.client.result('SDM.merge', params);
    await agent.waitFor(params.job_id, (j) => j.step === 'commit');
    const running = agent;
    agent = undefined;
    expect(await running.stop()).to.equal(0);
    expect(await exists(workspace.socket)).to.equal(false);
    const done = running.logLines().find((l) => l.job === params.job_id && l.status === 'done');
    expect(done, running.stderr).to.not.equal(undefined);
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
  });

  it('on SIGTERM with --stop-timeout 0 interrupts a running merge, records it, and leaves the chain readable', async () => {
    agent = await AgentProcess.start(workspace, ['--stop-timeout', '0'], { VOLMERGE_TEST_COMMIT_RATE: String(8 * MiB) });
    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 64 });
    const params = mergeParams(chain);
    await agent.client.result('SDM.merge', params);
    await agent.waitFor(params.job_id, (j) => j.step === 'commit' && j.progress > 0);
    const running = agent;
    agent = undefined;
    expect(await running.stop()).to.equal(0);
    const interrupted = running.logLines().find((l) => l.job === params.job_id && String(l.message).includes('interrupted'));
    expect(interrupted, running.stderr).to.deep.include({ status: 'aborted', level: 'warn' });
    expect(await sameData(chain.top, chain.raw)).to.equal(true);
  });
});
