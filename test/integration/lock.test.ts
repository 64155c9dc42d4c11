// One lock per chain, shared by the CLI and the agent: a second merge of a busy chain is refused at once, naming the
// holder; the lock goes with its holder, however that dies.
import { expect } from 'chai';
import { execa } from 'execa';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireChainLock, readLockHolder } from '../../src/jobs/chain-lock.js';
import { VolmergeError } from '../../src/errors.js';
import { checkAgainst } from '../../src/schema.js';
import { runCli } from '../helpers/cli.js';
import { Workspace } from '../helpers/workspace.js';
import { AgentProcess, AgentWorkspace, mergeParams } from '../helpers/agent-harness.js';
import { expectMerged, prepareChain } from '../helpers/crash-harness.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const CHAIN_LOCK_MODULE = fileURLToPath(new URL('../../src/jobs/chain-lock.js', import.meta.url));

async function refusal(promise: Promise<unknown>): Promise<VolmergeError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VolmergeError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('the chain lock (in one process, as the agent holds it)', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volmerge-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second holder of the same chain with busy, naming pid and job; other chains are free', async () => {
    const first = await acquireChainLock('file:1:100', { jobId: 'job-a', base: '/x/base' }, dir);
    const error = await refusal(acquireChainLock('file:1:100', { jobId: 'job-b', base: '/x/base' }, dir));
    expect(error.code).to.equal('busy');
    expect(error.message).to.contain(`pid ${process.pid}, job job-a`);
    const other = await acquireChainLock('file:1:101', { jobId: 'job-c', base: '/x/other' }, dir);
    expect((await readLockHolder('file:1:100', dir))?.jobId).to.equal('job-a');
    await first.release();
    await other.release();
    expect(await readLockHolder('file:1:100', dir)).to.equal(undefined);
    const again = await acquireChainLock('file:1:100', { jobId: 'job-b', base: '/x/base' }, dir);
    await again.release();
    expect(await readdir(dir), 'released locks leave no files').to.deep.equal([]);
  });

  it('is released by the kernel when its holder is SIGKILLed', async () => {
    const script = `import { acquireChainLock } from ${JSON.stringify(CHAIN_LOCK_MODULE)};
await acquireChainLock('lv:vg0/base', { jobId: 'doomed', base: '/dev/vg0/base' }, ${JSON.stringify(dir)});
console.log('locked');
setInterval(() => undefined, 1000);`;
    const child = execa('node', ['--input-type=module', '-e', script], { reject: false, stdin: 'ignore', detached: true });
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('locked')) resolve();
      });
      child.once('exit', () => reject(new Error('the holder exited early')));
    });
    const error = await refusal(acquireChainLock('lv:vg0/base', { jobId: 'second', base: '/dev/vg0/base' }, dir));
    expect(error.code).to.equal('busy');
    expect(error.message).to.contain(`pid ${child.pid}, job doomed`);
    expect((await readLockHolder('lv:vg0/base', dir))?.pid).to.equal(child.pid);
    process.kill(-(child.pid ?? 0), 'SIGKILL');
    await child;
    expect(await readLockHolder('lv:vg0/base', dir), 'a record left by a dead holder does not count').to.equal(undefined);
    const taken = await acquireChainLock('lv:vg0/base', { jobId: 'second', base: '/dev/vg0/base' }, dir);
    await taken.release();
  });
});

describe('two merges of one chain', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-lock-');

  it('two CLI merges started together: one runs, the other is refused at once with busy naming the holder', async () => {
    const chain = await prepareChain(ws, 'file');
    const args = ['merge', '--top', chain.top, '--base', chain.base, '--json', '--rate-limit', String(16 * 1024 * 1024)];
    const results = await Promise.all([0, 1].map(() => runCli(args, chain.env)));
    const outputs = results.map((r) =>
      checkAgainst<{ status: string; error?: { code: string; message: string } }>('merge-result.schema.json', JSON.parse(String(r.stdout)), 'volmerge merge --json'),
    );
    const winner = outputs.findIndex((o) => o.status === 'done');
    const loser = 1 - winner;
    expect(winner, JSON.stringify(outputs)).to.be.oneOf([0, 1]);
    expect(results[winner]?.exitCode).to.equal(0);
    expect(results[loser]?.exitCode).to.equal(1);
    expect(outputs[loser]?.error?.code).to.equal('busy');
    expect(outputs[loser]?.error?.message).to.match(new RegExp(`another merge of this chain is running \\(pid ${results[winner]?.pid}, job cli-${results[winner]?.pid}-\\d+`));
    await expectMerged(chain);
    expect(await readdir(join(chain.stateDir, 'jobs')), 'the refused merge wrote no journal').to.deep.equal([]);
  });

  it("a CLI merge of a chain the agent is merging is refused, naming the agent's job", async () => {
    const aws = await AgentWorkspace.create();
    const lockDir = join(aws.dir, 'locks');
    const agent = await AgentProcess.start(aws, [], { VOLMERGE_TEST_COMMIT_RATE: String(4 * 1024 * 1024), VOLMERGE_LOCK_DIR: lockDir });
    try {
      const chain = await aws.chain({ virtualSize: '256M', shared: ['shared'], topDataMiB: 24 });
      const params = mergeParams(chain);
      await agent.client.result('SDM.merge', params);
      await agent.waitFor(params.job_id, (j) => j.step === 'commit' || ['done', 'failed'].includes(j.status));
      const cli = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--state-dir', aws.stateDir], { VOLMERGE_LOCK_DIR: lockDir });
      expect(cli.exitCode).to.equal(1);
      expect(String(cli.stderr)).to.contain(`(pid ${agent.child.pid}, job ${params.job_id}`);
      const job = await agent.finished(params.job_id);
      expect(job.status, JSON.stringify(job)).to.equal('done');
    } finally {
      await agent.stop();
      await aws.dispose();
    }
  });
});
