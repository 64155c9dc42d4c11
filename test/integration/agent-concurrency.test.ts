// The real agent with --max-jobs 2: two merges of different chains run at once, a third waits as pending; Host.getJobs latency meanwhile.
import { expect } from 'chai';
import { RpcClient } from '../../src/agent/client.js';
import { sameData } from '../helpers/images.js';
import { AgentProcess, AgentWorkspace, mergeParams, type JobView } from '../helpers/agent-harness.js';

const MiB = 1024 * 1024;

/** The value below which a share q of the sorted samples lie. */
function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

/** Times Host.getJobs calls while exactly two merges run; stops after durationMs or when that is no longer so. */
async function sampleWhileTwoRun(call: () => Promise<Record<string, JobView>>, durationMs: number): Promise<number[]> {
  const samples: number[] = [];
  const until = Date.now() + durationMs;
  while (Date.now() < until) {
    const started = process.hrtime.bigint();
    const jobs = await call();
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    if (Object.values(jobs).filter((j) => j.status === 'running').length !== 2) break;
    samples.push(elapsed);
  }
  return samples;
}

function describeLatency(label: string, samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `${label}: n=${sorted.length} p50=${percentile(sorted, 0.5).toFixed(2)} ms p99=${percentile(sorted, 0.99).toFixed(2)} ms max=${(sorted[sorted.length - 1] ?? NaN).toFixed(2)} ms`;
}

describe('agent: jobs at once', function () {
  this.timeout(180_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess;

  before(async () => {
    workspace = await AgentWorkspace.create();
    agent = await AgentProcess.start(workspace, ['--max-jobs', '2'], { VOLMERGE_TEST_COMMIT_RATE: String(8 * MiB) });
  });
  after(async () => {
    await workspace.dispose(); // also stops the agent
  });

  it('runs two merges of different chains at once while a third waits as pending, then runs it', async () => {
    const chains = [];
    for (let i = 0; i < 3; i += 1) chains.push(await workspace.chain({ virtualSize: '64M', shared: ['shared'], topDataMiB: 48 }, `sd-${i}`));
    const params = chains.map((c) => mergeParams(c));
    for (const p of params) expect(await agent.client.result('SDM.merge', p)).to.equal(true);

    const [first, second, third] = params.map((p) => p.job_id);
    const seen = await agent.waitFor(third ?? '', () => true);
    expect(seen[0]?.status).to.equal('pending');
    const all = await agent.jobs();
    expect([all[first ?? '']?.status, all[second ?? '']?.status, all[third ?? '']?.status]).to.deep.equal(['running', 'running', 'pending']);

    // Host.getJobs latency while both merges run: over one kept-alive connection, and with a new connection per call.
    const keptAlive = await sampleWhileTwoRun(() => agent.jobs(), 1500);
    const fresh = await sampleWhileTwoRun(async () => {
      const client = new RpcClient({ socketPath: workspace.socket });
      try {
        return await client.result<Record<string, JobView>>('Host.getJobs', {});
      } finally {
        client.close();
      }
    }, 1500);
    console.log(`      Host.getJobs latency with 2 merges running (${process.env.VOLMERGE_TEST_TMP || 'tmp'} files, 8 MiB/s commits):`);
    console.log(`        ${describeLatency('keep-alive connection', keptAlive)}`);
    console.log(`        ${describeLatency('new connection per call', fresh)}`);
    expect(keptAlive.length + fresh.length).to.be.above(0);

    for (const p of params) {
      const job = await agent.finished(p.job_id, 120_000);
      expect(job.status, JSON.stringify(job)).to.equal('done');
    }
    for (const c of chains) expect(await sameData(c.base, c.raw)).to.equal(true);
  });
});
