// Host.getJobs latency (p50/p99) of the real agent, idle and while 4 merges run, over its unix socket (POST /rpc).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RpcClient } from '../../src/agent/client.js';
import type { GoldenChain } from './chains.js';
import { dropFromCache } from './chains.js';
import { exec, must } from './proc.js';
import { percentile, round } from './stats.js';
import type { Build } from './volmerge.js';
import type { Workspace } from './workspace.js';

/** Latency figures of one way of calling. */
export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** The agent figures, or why they are missing. */
export type AgentResult =
  | { skipped: string }
  | {
      merges: number;
      dataMiB: number;
      idle: LatencySummary;
      /** Calls over one kept-alive connection while all merges ran. */
      busyKeepAlive: LatencySummary;
      /** Calls with a new connection each while all merges ran. */
      busyNewConnection: LatencySummary;
      /** Wall time from the first SDM.merge to the last job done. */
      allDoneMs: number;
      statuses: string[];
    };

interface JobView {
  status: string;
}

const GET_JOBS = JSON.stringify({ jsonrpc: '2.0', method: 'Host.getJobs', params: {}, id: 1 });

function summarizeLatency(samples: readonly number[]): LatencySummary {
  return { samples: samples.length, p50: round(percentile(samples, 0.5), 2), p99: round(percentile(samples, 0.99), 2), max: round(Math.max(...samples), 2) };
}

/** Times one Host.getJobs call and returns its jobs. */
async function timedGetJobs(client: RpcClient): Promise<{ ms: number; jobs: Record<string, JobView> }> {
  const started = process.hrtime.bigint();
  const reply = await client.post(GET_JOBS);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const body = JSON.parse(reply.body) as { result?: Record<string, JobView>; error?: { message: string } };
  if (!body.result) throw new Error(`Host.getJobs failed: ${reply.body.slice(0, 300)}`);
  return { ms, jobs: body.result };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Copies the golden chain into <domains>/<sd>/images/<img>/<vol> with top's backing file named relatively, as vdsm does. */
export async function domainChain(domains: string, golden: GoldenChain): Promise<Record<string, string>> {
  const info = { sd_id: 'bench-sd', img_id: randomUUID(), top_id: randomUUID(), base_id: randomUUID() };
  const dir = join(domains, info.sd_id, 'images', info.img_id);
  await mkdir(dir, { recursive: true });
  const base = join(dir, info.base_id);
  const top = join(dir, info.top_id);
  await must(['cp', '--sparse=always', golden.base, base]);
  await must(['cp', '--sparse=always', golden.top, top]);
  await must(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', info.base_id, top]);
  await must(['sync', base, top]);
  await dropFromCache(base);
  await dropFromCache(top);
  return info;
}

/** Starts the agent with --max-jobs merges, submits that many merges at once, and times Host.getJobs meanwhile. */
export async function measureAgent(build: Build, workspace: Workspace, golden: GoldenChain, merges: number, say: (line: string) => void): Promise<AgentResult> {
  const help = await exec(['node', build.cli, 'agent', '--help']);
  if (help.code !== 0) return { skipped: `volmerge agent --help exited ${help.code}: the agent is not built` };
  const root = workspace.path('agent');
  const domains = join(root, 'domains');
  await mkdir(domains, { recursive: true });
  const socket = join(root, 'agent.sock');
  const chains = [];
  for (let i = 0; i < merges; i += 1) chains.push(await domainChain(domains, golden));

  const agent = spawn(
    'node',
    [build.cli, 'agent', '--socket', socket, '--state-dir', join(root, 'state'), '--file-domains', domains, '--max-jobs', String(merges), '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let agentLog = '';
  agent.stderr.setEncoding('utf8');
  agent.stderr.on('data', (chunk: string) => (agentLog += chunk));
  const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
  const client = new RpcClient({ socketPath: socket }, 30_000);
  try {
    for (let deadline = Date.now() + 15_000; ; ) {
      if (agent.exitCode !== null) throw new Error(`the agent exited ${agent.exitCode}: ${agentLog.slice(0, 1000)}`);
      try {
        await client.result('Host.ping');
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`the agent did not answer Host.ping within 15 s: ${String(error)} ${agentLog.slice(0, 500)}`);
        await sleep(50);
      }
    }
    const idle: number[] = [];
    for (let i = 0; i < 300; i += 1) idle.push((await timedGetJobs(client)).ms);

    const started = Date.now();
    for (const info of chains) await client.result('SDM.merge', { job_id: randomUUID(), subchain_info: info });
    const keepAlive: number[] = [];
    const fresh: number[] = [];
    let jobs: Record<string, JobView> = {};
    for (let i = 0, deadline = Date.now() + 20 * 60_000; Date.now() < deadline; i += 1) {
      const useFresh = i % 2 === 1;
      const caller = useFresh ? new RpcClient({ socketPath: socket }, 30_000) : client;
      const sample = await timedGetJobs(caller);
      if (useFresh) caller.close();
      jobs = sample.jobs;
      const statuses = Object.values(jobs).map((j) => j.status);
      if (statuses.filter((s) => s === 'running').length === merges) (useFresh ? fresh : keepAlive).push(sample.ms);
      if (statuses.length === merges && statuses.every((s) => ['done', 'failed', 'aborted'].includes(s))) break;
      await sleep(5);
    }
    const allDoneMs = Date.now() - started;
    const statuses = Object.values(jobs).map((j) => j.status);
    say(`  agent: ${merges} merges of ${golden.dataMiB} MiB ended ${statuses.join(', ')} after ${allDoneMs} ms; ${keepAlive.length + fresh.length} Host.getJobs samples while all ran`);
    if (!statuses.every((s) => s === 'done')) throw new Error(`agent merges ended ${JSON.stringify(jobs)}; agent log: ${agentLog.slice(-1500)}`);
    return {
      merges,
      dataMiB: golden.dataMiB,
      idle: summarizeLatency(idle),
      busyKeepAlive: summarizeLatency(keepAlive),
      busyNewConnection: summarizeLatency(fresh),
      allDoneMs,
      statuses,
    };
  } finally {
    client.close();
    if (agent.exitCode === null) agent.kill('SIGTERM');
    await exited;
  }
}
