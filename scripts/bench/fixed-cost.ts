// The fixed cost of a merge, everything outside qemu-img's copy, by the two ways in: the CLI (node's start-up included)
// and the agent (already running, called over its socket): on files, with stale bitmaps in base and a small top.
// Runs alternate between the two paths; each merge is on a fresh copy of the golden chain with cold caches.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RpcClient } from '../../src/agent/client.js';
import { listenToEvents } from './agent-events.js';
import { domainChain } from './agent-latency.js';
import { freshCopy, type GoldenChain } from './chains.js';
import { summarize, type Summary } from './stats.js';
import { breakdown, childKind, tracedMerge, type Build } from './volmerge.js';
import type { TracedChild } from './spawn-trace.cjs';
import type { Workspace } from './workspace.js';

/** The fixed cost by both paths. */
export interface FixedCostResult {
  dataMiB: number;
  staleBitmaps: number;
  /** Wall time minus the commit process, per path. */
  cli: Summary;
  agent: Summary;
  /** The agent's wall time from sending SDM.merge to the job's "done" event. */
  agentWall: Summary;
}

const childMs = (child: TracedChild): number => (child.endMs ?? child.startMs) - child.startMs;

/** Starts the agent under the spawn tracer (one JSON line per child that exits) and waits until it answers. */
async function startTracedAgent(build: Build, root: string, lines: string) {
  const socket = join(root, 'agent.sock');
  const domains = join(root, 'domains');
  await mkdir(domains, { recursive: true });
  const agent = spawn('node', ['--require', build.tracer, build.cli, 'agent', '--socket', socket, '--state-dir', join(root, 'state'), '--file-domains', domains, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, VOLMERGE_BENCH_TRACE_LINES: lines, VOLMERGE_LOCK_DIR: join(root, 'locks') },
  });
  const client = new RpcClient({ socketPath: socket }, 60_000);
  for (let deadline = Date.now() + 15_000; ; ) {
    try {
      await client.result('Host.ping2');
      break;
    } catch (error) {
      if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`the agent did not start: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const events = await listenToEvents(socket);
  const stop = async (): Promise<void> => {
    events.close();
    client.close();
    const exited = new Promise((resolve) => agent.once('exit', resolve));
    if (agent.exitCode === null) agent.kill('SIGTERM');
    await exited;
  };
  return { client, events, domains, stop };
}

/** One merge through the agent: from SDM.merge to the done event, minus the commit process the agent ran. */
async function agentMerge(agent: Awaited<ReturnType<typeof startTracedAgent>>, golden: GoldenChain, lines: string): Promise<{ wallMs: number; outsideMs: number }> {
  const info = await domainChain(agent.domains, golden);
  await writeFile(lines, '');
  const jobId = randomUUID();
  const started = performance.now();
  await agent.client.result('SDM.merge', { job_id: jobId, subchain_info: info });
  const ended = await agent.events.ended(jobId);
  const wallMs = ended.atMs - started;
  if (ended.status !== 'done') throw new Error(`agent merge ${jobId} ended ${ended.status}`);
  const children = (await readFile(lines, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as TracedChild);
  const commitMs = children.filter((c) => childKind(c) === 'qemu-img commit').reduce((sum, c) => sum + childMs(c), 0);
  await agent.client.result('Job.delete', { job_id: jobId });
  return { wallMs, outsideMs: wallMs - commitMs };
}

/** Alternates runs merges by the CLI and by the agent, each on a fresh copy; returns the medians. */
export async function measureFixedCost(build: Build, workspace: Workspace, golden: GoldenChain, runs: number, say: (line: string) => void): Promise<FixedCostResult> {
  const root = workspace.path('fixed-agent');
  const lines = join(root, 'children.jsonl');
  await mkdir(root, { recursive: true });
  const agent = await startTracedAgent(build, root, lines);
  const cli: number[] = [];
  const viaAgent: number[] = [];
  const agentWall: number[] = [];
  try {
    for (let run = 0; run < runs; run += 1) {
      const copy = await freshCopy(workspace, golden, 'file', 'fixed-cli');
      try {
        cli.push(breakdown(await tracedMerge(build, copy.top, copy.base, workspace.path('fixed-state'), workspace.path('fixed-trace.json'))).outsideCommitMs);
      } finally {
        await copy.dispose();
      }
      const merged = await agentMerge(agent, golden, lines);
      viaAgent.push(merged.outsideMs);
      agentWall.push(merged.wallMs);
      say(`  fixed cost run ${run + 1}/${runs}: CLI ${cli.at(-1)?.toFixed(0)} ms, agent ${merged.outsideMs.toFixed(0)} ms outside the commit`);
    }
  } finally {
    await agent.stop();
  }
  return { dataMiB: golden.dataMiB, staleBitmaps: golden.staleBitmaps, cli: summarize(cli), agent: summarize(viaAgent), agentWall: summarize(agentWall) };
}
