// The targets of issue 23, measured side by side in one run: the fixed cost of a merge (its wall time minus a bare
// `qemu-img commit -t none` of the same chain, run by run) by the CLI and by the agent, in units of one `qemu-img info`
// of the same base (cold caches, as a merge meets it); and a merge against vdsm's own command sequence at several counts
// of stale bitmaps. Every contender runs on its own fresh copy of the golden chain; the order rotates every round.
import { loadavg } from 'node:os';
import type { BenchAgent } from './agent-runner.js';
import { freshCopy, type GoldenChain } from './chains.js';
import { must } from './proc.js';
import { median, round, summarize, type Summary } from './stats.js';
import { vdsmSequence } from './vdsm.js';
import { breakdown, plainMerge, timeline, tracedMerge, type Build, type MergeBreakdown, type TracedMerge } from './volmerge.js';
import type { Workspace } from './workspace.js';

/** A build under test: this checkout, or the baseline it is compared with. */
export interface Contender {
  label: string;
  commit: string;
  build: Build;
  agent: BenchAgent;
}

/** One build's figures against the bare commit. */
export interface BuildFixed {
  label: string;
  commit: string;
  cli: Summary;
  agent: Summary;
  /** Merge minus the bare commit of the same round, in ms. */
  cliFixed: Summary;
  agentFixed: Summary;
  /** The same in units of one qemu-img info (the run's median). */
  cliUnits: Summary;
  agentUnits: Summary;
  /** Where one CLI merge's time goes (the median of a few traced runs after the rounds). */
  breakdown?: MergeBreakdown;
  timeline?: { atMs: number; what: string }[];
}

/** The fixed-cost figures of one run. */
export interface FixedTargets {
  dataMiB: number;
  staleBitmaps: number;
  runs: number;
  /** One `qemu-img info --output json` of base from a fresh copy with cold caches: the unit. */
  unit: Summary;
  /** The same run again at once (warm caches), for reference. */
  unitWarm: Summary;
  commit: Summary;
  builds: BuildFixed[];
  /** 1-minute load average at the start of each round. */
  load: Summary;
}

/** Times one qemu-img info of base from a fresh copy: cold (caches dropped by the copy), then warm. */
async function timeUnit(workspace: Workspace, golden: GoldenChain): Promise<{ cold: number; warm: number }> {
  const copy = await freshCopy(workspace, golden, 'file', 'unit');
  try {
    const argv = ['qemu-img', 'info', '--output', 'json', '-f', 'qcow2', copy.base];
    const cold = (await must(argv)).ms;
    return { cold, warm: (await must(argv)).ms };
  } finally {
    await copy.dispose();
  }
}

/** Times one bare `qemu-img commit -t none -b BASE TOP` of a fresh copy. */
export async function timeBareCommit(workspace: Workspace, golden: GoldenChain): Promise<number> {
  const copy = await freshCopy(workspace, golden, 'file', 'bare-commit');
  try {
    return (await must(['qemu-img', 'commit', '-t', 'none', '-f', 'qcow2', '-b', copy.base, copy.top])).ms;
  } finally {
    await copy.dispose();
  }
}

/** Times one `volmerge merge` of a fresh copy by the CLI of a build. */
export async function timeCliMerge(workspace: Workspace, golden: GoldenChain, build: Build, label: string): Promise<number> {
  const copy = await freshCopy(workspace, golden, 'file', `cli-${label}`);
  try {
    return (await plainMerge(build, copy.top, copy.base, workspace.path(`state-${label}`))).ms;
  } finally {
    await copy.dispose();
  }
}

/** runs traced CLI merges of fresh copies; the one with the median wall time. */
async function medianTraced(workspace: Workspace, golden: GoldenChain, contender: Contender, runs: number): Promise<TracedMerge> {
  const merges: TracedMerge[] = [];
  for (let i = 0; i < runs; i += 1) {
    const copy = await freshCopy(workspace, golden, 'file', `traced-${contender.label}`);
    try {
      merges.push(await tracedMerge(contender.build, copy.top, copy.base, workspace.path(`state-${contender.label}`), workspace.path('trace.json')));
    } finally {
      await copy.dispose();
    }
  }
  return [...merges].sort((a, b) => a.wall.ms - b.wall.ms)[Math.floor(runs / 2)] as TracedMerge;
}

/** The order of round r: the list rotated by r. */
export function rotated<T>(items: readonly T[], round_: number): T[] {
  return items.map((_, i) => items[(i + round_) % items.length] as T);
}

/** Differences a[i] - b[i] of two paired sample lists. */
function paired(a: readonly number[], b: readonly number[]): number[] {
  return a.map((value, i) => value - (b[i] as number));
}

/** Alternates the unit, the bare commit and each contender's CLI and agent merges, runs rounds. */
export async function measureFixedTargets(
  workspace: Workspace,
  golden: GoldenChain,
  contenders: readonly Contender[],
  runs: number,
  say: (line: string) => void,
): Promise<FixedTargets> {
  const unit: number[] = [];
  const warm: number[] = [];
  const commit: number[] = [];
  const load: number[] = [];
  const cli = new Map<string, number[]>(contenders.map((c) => [c.label, []]));
  const agent = new Map<string, number[]>(contenders.map((c) => [c.label, []]));
  type Task = { name: string; run(): Promise<void> };
  const tasks: Task[] = [
    {
      name: 'unit',
      run: async () => {
        const t = await timeUnit(workspace, golden);
        unit.push(t.cold);
        warm.push(t.warm);
      },
    },
    { name: 'commit', run: async () => void commit.push(await timeBareCommit(workspace, golden)) },
  ];
  for (const c of contenders) {
    tasks.push({ name: `cli ${c.label}`, run: async () => void cli.get(c.label)?.push(await timeCliMerge(workspace, golden, c.build, c.label)) });
    tasks.push({ name: `agent ${c.label}`, run: async () => void agent.get(c.label)?.push((await c.agent.merge(golden)).wallMs) });
  }
  for (let r = 0; r < runs; r += 1) {
    load.push(loadavg()[0] ?? 0);
    for (const task of rotated(tasks, r)) await task.run();
    const parts = contenders.map((c) => `${c.label}: CLI ${cli.get(c.label)?.at(-1)?.toFixed(0)} agent ${agent.get(c.label)?.at(-1)?.toFixed(0)}`);
    say(`  targets round ${r + 1}/${runs}: info ${unit.at(-1)?.toFixed(0)} ms, commit ${commit.at(-1)?.toFixed(0)} ms, ${parts.join(', ')} ms (load ${load.at(-1)?.toFixed(2)})`);
  }
  const traced = new Map<string, TracedMerge>();
  for (const c of contenders) traced.set(c.label, await medianTraced(workspace, golden, c, 3));
  const unitMs = median(unit);
  const inUnits = (samples: number[]): Summary => ({
    samples: samples.map((v) => round(v / unitMs, 2)),
    median: round(median(samples) / unitMs, 2),
    min: round(Math.min(...samples) / unitMs, 2),
    max: round(Math.max(...samples) / unitMs, 2),
  });
  const builds = contenders.map((c): BuildFixed => {
    const cliMs = cli.get(c.label) ?? [];
    const agentMs = agent.get(c.label) ?? [];
    const cliFixed = paired(cliMs, commit);
    const agentFixed = paired(agentMs, commit);
    return {
      label: c.label,
      commit: c.commit,
      cli: summarize(cliMs),
      agent: summarize(agentMs),
      cliFixed: summarize(cliFixed),
      agentFixed: summarize(agentFixed),
      cliUnits: inUnits(cliFixed),
      agentUnits: inUnits(agentFixed),
      ...(traced.get(c.label) ? { breakdown: breakdown(traced.get(c.label) as TracedMerge), timeline: timeline(traced.get(c.label) as TracedMerge) } : {}),
    };
  });
  return { dataMiB: golden.dataMiB, staleBitmaps: golden.staleBitmaps, runs, unit: summarize(unit), unitWarm: summarize(warm), commit: summarize(commit), builds, load: summarize(load) };
}

/** One stale-bitmap count against vdsm's sequence. */
export interface VdsmFigures {
  staleBitmaps: number;
  dataMiB: number;
  runs: number;
  vdsm: Summary;
  builds: { label: string; commit: string; cli: Summary; agent: Summary; cliRatio: Summary; agentRatio: Summary }[];
}

/** Times vdsm's sequence on a fresh copy. */
async function timeVdsm(workspace: Workspace, golden: GoldenChain): Promise<number> {
  const copy = await freshCopy(workspace, golden, 'file', 'vdsm');
  try {
    const stale = Array.from({ length: golden.staleBitmaps }, (_, i) => `stale${i}`);
    return await vdsmSequence(copy.top, copy.base, { stale, top: [{ name: 'good', granularity: 65536 }] });
  } finally {
    await copy.dispose();
  }
}

/** Ratios a[i] / b[i] of two paired sample lists, as a summary with 3 decimals. */
function ratioSummary(a: readonly number[], b: readonly number[]): Summary {
  const ratios = a.map((value, i) => value / (b[i] as number));
  return { samples: ratios.map((r) => round(r, 3)), median: round(median(ratios), 3), min: round(Math.min(...ratios), 3), max: round(Math.max(...ratios), 3) };
}

/** Alternates vdsm's sequence with each contender's CLI and agent merge of the same golden chain. */
export async function measureAgainstVdsm(
  workspace: Workspace,
  golden: GoldenChain,
  contenders: readonly Contender[],
  runs: number,
  say: (line: string) => void,
): Promise<VdsmFigures> {
  const vdsm: number[] = [];
  const cli = new Map<string, number[]>(contenders.map((c) => [c.label, []]));
  const agent = new Map<string, number[]>(contenders.map((c) => [c.label, []]));
  const tasks: { run(): Promise<void> }[] = [{ run: async () => void vdsm.push(await timeVdsm(workspace, golden)) }];
  for (const c of contenders) {
    tasks.push({ run: async () => void cli.get(c.label)?.push(await timeCliMerge(workspace, golden, c.build, c.label)) });
    tasks.push({ run: async () => void agent.get(c.label)?.push((await c.agent.merge(golden)).wallMs) });
  }
  for (let r = 0; r < runs; r += 1) {
    for (const task of rotated(tasks, r)) await task.run();
    const parts = contenders.map((c) => `${c.label}: CLI ${cli.get(c.label)?.at(-1)?.toFixed(0)} agent ${agent.get(c.label)?.at(-1)?.toFixed(0)}`);
    say(`  vdsm ${golden.staleBitmaps} stale, round ${r + 1}/${runs}: vdsm ${vdsm.at(-1)?.toFixed(0)} ms, ${parts.join(', ')} ms`);
  }
  return {
    staleBitmaps: golden.staleBitmaps,
    dataMiB: golden.dataMiB,
    runs,
    vdsm: summarize(vdsm),
    builds: contenders.map((c) => {
      const cliMs = cli.get(c.label) ?? [];
      const agentMs = agent.get(c.label) ?? [];
      return { label: c.label, commit: c.commit, cli: summarize(cliMs), agent: summarize(agentMs), cliRatio: ratioSummary(cliMs, vdsm), agentRatio: ratioSummary(agentMs, vdsm) };
    }),
  };
}
