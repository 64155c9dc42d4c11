// `node dist/scripts/bench/live.js [options]` (and the live section of `npm run bench`, which runs it through the CLI:
// `volmerge merge --qmp`): a live merge (block-commit in a running VM: chain, plan, job, ready, bitmap transaction,
// pivot, old top closed) against a cold `qemu-img commit` of the same chain, the test
// VM's start time, and the VM's write latency (one 64 KiB qemu-io write through the monitor) idle and while a merge
// runs. The VM is qemu-system-x86_64 under TCG with no guest OS (test/helpers/live-vm.ts). Needs root for loop devices.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  closeOldTop,
  disableForJob,
  findLiveChain,
  pivotWithBitmaps,
  planLiveBitmaps,
  pruneLiveBitmaps,
  QmpClient,
  startCommit,
  waitReady,
} from '../../src/live/index.js';
import { queryJobs } from '../../src/live/queries.js';
import { startLiveVm, type LiveVm } from '../../test/helpers/live-vm.js';
import { buildGolden, freshCopy, type ChainCopy, type GoldenChain, type Medium } from './chains.js';
import { must } from './proc.js';
import { percentile, round, summarize, type Summary } from './stats.js';
import { withWorkspace, type Workspace } from './workspace.js';

const USAGE = `usage: node dist/scripts/bench/live.js [options]
  --sizes LIST    MiB of data in top, comma-separated (default 256)
  --runs N        runs per figure, median reported (default 3)
  --media LIST    file,loop (default file)
  --writes N      guest writes per latency sample set (default 200)
  --dir DIR       where chains are built (default /var/tmp)`;

const KiB = 1024;

/** The figures of one chain size on one medium. */
export interface LiveFigures {
  dataMiB: number;
  /** How the live merge ran: `volmerge merge --qmp` (node start-up included), or the src/live steps in this process. */
  via: 'cli' | 'library';
  medium: Medium;
  /** Milliseconds of a cold qemu-img commit -t none of the chain. */
  coldCommitMs: Summary;
  /** Milliseconds from connecting to the monitor to the old top closed, the guest idle. */
  liveMergeMs: Summary;
  /** Milliseconds from starting qemu to both monitors answering. */
  vmStartMs: Summary;
  /** One 64 KiB guest write (HMP qemu-io round trip), idle and while the commit copies. */
  writeIdleMs: { median: number; p95: number; count: number };
  writeDuringMergeMs: { median: number; p95: number; count: number };
}

/** Starts the VM on a copy of the chain (its sockets in a folder of its own); resolves with it and how long it took. */
async function timedVm(dir: string, copy: ChainCopy): Promise<{ vm: LiveVm; ms: number }> {
  await mkdir(dir);
  const started = performance.now();
  const vm = await startLiveVm(dir, [copy.base, copy.top]);
  return { vm, ms: performance.now() - started };
}

/** Whether qemu runs a block job now (seen through the VM's second monitor, which volmerge does not use). */
async function copying(vm: LiveVm): Promise<boolean> {
  return (await queryJobs(vm.qmp)).some((job) => job.status === 'running');
}

/** Runs the whole live merge at full speed with `volmerge merge --qmp`; during() runs once qemu's job copies. */
async function cliMerge(cli: string, stateDir: string, vm: LiveVm, copy: ChainCopy, during?: () => Promise<void>): Promise<void> {
  let ended = false;
  const run = must(['node', cli, 'merge', '--top', copy.top, '--base', copy.base, '--qmp', vm.socket, '--state-dir', stateDir, '--log-level', 'warn']).finally(() => {
    ended = true;
  });
  if (during) {
    while (!ended && !(await copying(vm))) await new Promise((resolve) => setTimeout(resolve, 10));
    if (!ended) await during();
  }
  await run;
}

/** Runs the whole live merge at full speed through src/live in this process; during() runs while the job copies. */
async function liveMerge(vm: LiveVm, copy: ChainCopy, jobId: string, during?: () => Promise<void>): Promise<void> {
  const client = await QmpClient.connect(vm.socket);
  try {
    const chain = await findLiveChain(client, { top: copy.top, base: copy.base });
    const plan = planLiveBitmaps(chain);
    await disableForJob(client, chain, plan);
    await startCommit(client, chain, { jobId });
    await pruneLiveBitmaps(client, chain, plan);
    await during?.();
    await waitReady(client, jobId);
    await pivotWithBitmaps(client, chain, plan, jobId);
    await closeOldTop(client, chain);
  } finally {
    client.close();
  }
}

/** Times count guest writes of 64 KiB at spread offsets; stops early when keepGoing says so. */
async function timeWrites(vm: LiveVm, count: number, virtualBytes: number, keepGoing: () => Promise<boolean> = async () => true): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count && (await keepGoing()); i += 1) {
    const offset = ((i * 7919) % Math.floor(virtualBytes / (64 * KiB))) * 64 * KiB;
    const started = performance.now();
    await vm.write(0x40 + (i % 64), offset, 64 * KiB);
    samples.push(performance.now() - started);
  }
  return samples;
}

/** Median, 95th percentile and count of latency samples. */
function latency(samples: number[]): { median: number; p95: number; count: number } {
  return { median: round(percentile(samples, 0.5), 2), p95: round(percentile(samples, 0.95), 2), count: samples.length };
}

/** Every figure for one golden chain on one medium; with cli (the built volmerge), each live merge is `volmerge merge --qmp`. */
export async function measureLive(workspace: Workspace, golden: GoldenChain, medium: Medium, runs: number, writes: number, cli?: string): Promise<LiveFigures> {
  const merge = (vm: LiveVm, copy: ChainCopy, name: string, during?: () => Promise<void>): Promise<void> =>
    cli ? cliMerge(cli, workspace.path(`state-${name}`), vm, copy, during) : liveMerge(vm, copy, name, during);
  const cold: number[] = [];
  const live: number[] = [];
  const starts: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const copy = await freshCopy(workspace, golden, medium, `cold-${medium}-${run}`);
    try {
      cold.push((await must(['qemu-img', 'commit', '-q', '-t', 'none', '-f', 'qcow2', '-b', copy.base, copy.top])).ms);
    } finally {
      await copy.dispose();
    }
    const liveCopy = await freshCopy(workspace, golden, medium, `live-${medium}-${run}`);
    const { vm, ms } = await timedVm(workspace.path(`vm-${medium}-${golden.dataMiB}-${run}`), liveCopy);
    try {
      starts.push(ms);
      const started = performance.now();
      await merge(vm, liveCopy, `bench-${medium}-${golden.dataMiB}-${run}`);
      live.push(performance.now() - started);
      await vm.quit();
    } finally {
      await vm.kill();
      await liveCopy.dispose();
    }
  }
  const copy = await freshCopy(workspace, golden, medium, `latency-${medium}`);
  const { vm } = await timedVm(workspace.path(`vm-latency-${medium}-${golden.dataMiB}`), copy);
  try {
    const idle = await timeWrites(vm, writes, golden.virtualBytes);
    let during: number[] = [];
    await merge(vm, copy, `bench-latency-${medium}-${golden.dataMiB}`, async () => {
      during = await timeWrites(vm, writes, golden.virtualBytes, () => copying(vm));
    });
    await vm.quit();
    return {
      dataMiB: golden.dataMiB,
      via: cli ? 'cli' : 'library',
      medium,
      coldCommitMs: summarize(cold),
      liveMergeMs: summarize(live),
      vmStartMs: summarize(starts),
      writeIdleMs: latency(idle),
      writeDuringMergeMs: latency(during),
    };
  } finally {
    await vm.kill();
    await copy.dispose();
  }
}

/** The figures as a markdown table. */
export function liveTable(figures: readonly LiveFigures[]): string {
  const rows = figures.map(
    (f) =>
      `| ${f.dataMiB} MiB | ${f.medium} | ${f.via === 'cli' ? '`volmerge merge --qmp`' : 'src/live in process'} | ${f.coldCommitMs.median} | ${f.liveMergeMs.median} | ${f.vmStartMs.median} | ` +
      `${f.writeIdleMs.median} / ${f.writeIdleMs.p95} (${f.writeIdleMs.count}) | ${f.writeDuringMergeMs.median} / ${f.writeDuringMergeMs.p95} (${f.writeDuringMergeMs.count}) |`,
  );
  return [
    '| data in top | medium | live merge by | cold qemu-img commit ms | live merge ms | VM start ms | 64 KiB write idle ms, median / p95 (n) | during the merge |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** Parses the options, measures, prints the table and the JSON. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { sizes: { type: 'string' }, runs: { type: 'string' }, media: { type: 'string' }, writes: { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const sizes = (values.sizes ?? '256').split(',').map(Number);
  const media = (values.media ?? 'file').split(',') as Medium[];
  const runs = Number(values.runs ?? 3);
  const writes = Number(values.writes ?? 200);
  const figures = await withWorkspace(values.dir ?? '/var/tmp', async (workspace) => {
    const found: LiveFigures[] = [];
    for (const size of sizes) {
      const golden = await buildGolden(workspace, size, 8);
      for (const medium of media) found.push(await measureLive(workspace, golden, medium, runs, writes));
    }
    return found;
  });
  console.log(liveTable(figures));
  console.log(JSON.stringify(figures, null, 1));
}

if (process.argv[1] && join(process.argv[1]) === new URL(import.meta.url).pathname) {
  main().catch((error: unknown) => {
    console.error(`bench live: ${(error as Error).message}`);
    process.exit(1);
  });
}
