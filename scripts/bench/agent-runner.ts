// Benchmark helper: a real `volmerge agent` on a unix socket (optionally under the spawn tracer), its job events, and
// one merge through it timed from SDM.merge to the job's "done" event.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RpcClient } from '../../src/agent/client.js';
import { listenToEvents, type EventListener } from './agent-events.js';
import { domainChain } from './agent-latency.js';
import type { GoldenChain } from './chains.js';
import type { Build } from './volmerge.js';

/** A running agent. */
export interface BenchAgent {
  client: RpcClient;
  events: EventListener;
  /** The agent's file domain root: chains merged through it are copied there. */
  domains: string;
  /** One merge of a fresh copy of golden: wall time from sending SDM.merge to the job's "done" event. */
  merge(golden: GoldenChain, beforeSend?: () => Promise<void>): Promise<{ wallMs: number; jobId: string }>;
  stop(): Promise<void>;
}

/** Starts `volmerge agent` from build in root; lines: trace every child it starts into that file (one JSON line each). */
export async function startAgent(build: Build, root: string, options: { lines?: string } = {}): Promise<BenchAgent> {
  const socket = join(root, 'agent.sock');
  const domains = join(root, 'domains');
  await mkdir(domains, { recursive: true });
  const traced = options.lines ? ['--require', build.tracer] : [];
  const argv = [...traced, build.cli, 'agent', '--socket', socket, '--state-dir', join(root, 'state'), '--file-domains', domains, '--log-level', 'warn'];
  const agent = spawn('node', argv, {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, VOLMERGE_LOCK_DIR: join(root, 'locks'), ...(options.lines ? { VOLMERGE_BENCH_TRACE_LINES: options.lines } : {}) },
  });
  const client = new RpcClient({ socketPath: socket }, 600_000);
  for (let deadline = Date.now() + 15_000; ; ) {
    try {
      await client.result('Host.ping2');
      break;
    } catch (error) {
      if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`the agent of ${build.root} did not start: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const events = await listenToEvents(socket);
  return {
    client,
    events,
    domains,
    async merge(golden, beforeSend) {
      const info = await domainChain(domains, golden);
      await beforeSend?.();
      const jobId = randomUUID();
      const started = performance.now();
      await client.result('SDM.merge', { job_id: jobId, subchain_info: info });
      const ended = await events.ended(jobId);
      if (ended.status !== 'done') throw new Error(`agent merge ${jobId} (${build.root}) ended ${ended.status}`);
      const wallMs = ended.atMs - started;
      await client.result('Job.delete', { job_id: jobId });
      return { wallMs, jobId };
    },
    async stop() {
      events.close();
      client.close();
      const exited = new Promise((resolve) => agent.once('exit', resolve));
      if (agent.exitCode === null) agent.kill('SIGTERM');
      await exited;
    },
  };
}
