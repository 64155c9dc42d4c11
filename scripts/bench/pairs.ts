// `volmerge merge` against a bare `qemu-img commit -t none` and a dd direct-I/O copy of the same bytes, alternated run by run.
import { rm } from 'node:fs/promises';
import { freshCopy, type GoldenChain, type Medium } from './chains.js';
import { must } from './proc.js';
import { median, round, summarize, type Summary } from './stats.js';
import { breakdown, plainMerge, tracedMerge, type Build, type MergeBreakdown } from './volmerge.js';
import type { Workspace } from './workspace.js';

const MiB = 1024 * 1024;
/** dd's block size, as the issue states the bound: bs=4M with direct I/O on both sides. */
const DD_BLOCK_MiB = 4;

/** The figures of one medium and data size. */
export interface PairResult {
  medium: Medium;
  dataMiB: number;
  staleBitmaps: number;
  runs: number;
  mergeMs: Summary;
  commitMs: Summary;
  /** merge / commit per pair (run i of each). */
  ratio: Summary;
  ddMs: Summary;
  commitMiBps: number;
  ddMiBps: number;
  /** dd time / commit time: above 1 means the commit beats the dd copy. */
  commitVsDd: number;
  /** Everything outside qemu-img's commit in each merge (wall minus the commit process). */
  outsideCommitMs: Summary;
  /** The commit process inside the merges, to compare with the bare commit. */
  commitInsideMergeMs: Summary;
  /** The breakdown of the merge with the median outside-commit time. */
  typicalMerge: MergeBreakdown;
  /** A baseline build's merges of the same chain, alternated with the others (--baseline). */
  baseline?: { commit: string; mergeMs: Summary; ratio: Summary };
}

/** The commands that are alternated. */
type Contender = 'merge' | 'commit' | 'dd' | 'baseline';

/** Times one bare `qemu-img commit -t none -b BASE TOP` of a fresh copy. */
async function bareCommit(workspace: Workspace, golden: GoldenChain, medium: Medium): Promise<number> {
  const copy = await freshCopy(workspace, golden, medium, 'run-commit');
  try {
    return (await must(['qemu-img', 'commit', '-t', 'none', '-b', copy.base, copy.top])).ms;
  } finally {
    await copy.dispose();
  }
}

/** Times one `volmerge merge` of a fresh copy by another build, untraced. */
async function baselineMerge(build: Build, workspace: Workspace, golden: GoldenChain, medium: Medium): Promise<number> {
  const copy = await freshCopy(workspace, golden, medium, 'run-baseline');
  try {
    return (await plainMerge(build, copy.top, copy.base, workspace.path('state-baseline'))).ms;
  } finally {
    await copy.dispose();
  }
}

/** Times one `volmerge merge` of a fresh copy, traced. */
async function oneMerge(build: Build, workspace: Workspace, golden: GoldenChain, medium: Medium): Promise<MergeBreakdown> {
  const copy = await freshCopy(workspace, golden, medium, 'run-merge');
  try {
    return breakdown(await tracedMerge(build, copy.top, copy.base, workspace.path('state'), workspace.path('trace.json')));
  } finally {
    await copy.dispose();
  }
}

/** Times one dd of dataMiB with direct I/O: from golden top's file (or a read-only loop device on it) to a fresh file (or device). */
async function oneDd(workspace: Workspace, golden: GoldenChain, medium: Medium): Promise<number> {
  const count = String(golden.dataMiB / DD_BLOCK_MiB);
  const target = workspace.path('dd.out');
  await rm(target, { force: true });
  if (medium === 'file') {
    try {
      return (await must(['dd', `if=${golden.top}`, `of=${target}`, `bs=${DD_BLOCK_MiB}M`, `count=${count}`, 'iflag=direct', 'oflag=direct', 'status=none'])).ms;
    } finally {
      await rm(target, { force: true });
    }
  }
  const devices: string[] = [];
  try {
    devices.push(await workspace.attachReadOnly(golden.top));
    devices.push(await workspace.attachLoop(target, (golden.dataMiB + 16) * MiB));
    const [input, output] = devices as [string, string];
    return (await must(['dd', `if=${input}`, `of=${output}`, `bs=${DD_BLOCK_MiB}M`, `count=${count}`, 'iflag=direct', 'oflag=direct', 'status=none'])).ms;
  } finally {
    for (const device of devices) await workspace.detachLoop(device);
    await rm(target, { force: true });
  }
}

/** Alternates merge, bare commit and dd (the order rotates every round), each from an identical fresh copy. */
export async function measurePairs(
  build: Build,
  workspace: Workspace,
  golden: GoldenChain,
  medium: Medium,
  runs: number,
  say: (line: string) => void,
  baseline?: { build: Build; commit: string },
): Promise<PairResult> {
  const merges: MergeBreakdown[] = [];
  const commits: number[] = [];
  const dds: number[] = [];
  const baselines: number[] = [];
  const contenders: Contender[] = ['merge', 'commit', 'dd', ...(baseline ? (['baseline'] as const) : [])];
  for (let round_ = 0; round_ < runs; round_ += 1) {
    const order = contenders.map((_, i) => contenders[(i + round_) % contenders.length] as Contender);
    for (const contender of order) {
      if (contender === 'merge') merges.push(await oneMerge(build, workspace, golden, medium));
      else if (contender === 'commit') commits.push(await bareCommit(workspace, golden, medium));
      else if (contender === 'baseline' && baseline) baselines.push(await baselineMerge(baseline.build, workspace, golden, medium));
      else dds.push(await oneDd(workspace, golden, medium));
    }
    const last = merges[merges.length - 1] as MergeBreakdown;
    say(
      `  ${medium} ${golden.dataMiB} MiB run ${round_ + 1}/${runs}: merge ${last.wallMs.toFixed(0)} ms (outside commit ${last.outsideCommitMs.toFixed(0)}), ` +
        `commit ${(commits[commits.length - 1] ?? NaN).toFixed(0)} ms, dd ${(dds[dds.length - 1] ?? NaN).toFixed(0)} ms` +
        (baseline ? `, baseline merge ${(baselines[baselines.length - 1] ?? NaN).toFixed(0)} ms` : ''),
    );
  }
  const mergeMs = merges.map((m) => m.wallMs);
  const outside = merges.map((m) => m.outsideCommitMs);
  const typical = [...merges].sort((a, b) => a.outsideCommitMs - b.outsideCommitMs)[Math.floor(merges.length / 2)] as MergeBreakdown;
  const commitMedian = median(commits);
  const ddMedian = median(dds);
  return {
    medium,
    dataMiB: golden.dataMiB,
    staleBitmaps: golden.staleBitmaps,
    runs,
    mergeMs: summarize(mergeMs),
    commitMs: summarize(commits),
    ratio: ratioOf(mergeMs, commits),
    ddMs: summarize(dds),
    commitMiBps: round(golden.dataMiB / (commitMedian / 1000)),
    ddMiBps: round(golden.dataMiB / (ddMedian / 1000)),
    commitVsDd: round(ddMedian / commitMedian, 3),
    outsideCommitMs: summarize(outside),
    commitInsideMergeMs: summarize(merges.map((m) => m.commitMs)),
    typicalMerge: roundBreakdown(typical),
    ...(baseline ? { baseline: { commit: baseline.commit, mergeMs: summarize(baselines), ratio: ratioOf(baselines, commits) } } : {}),
  };
}

/** Ratios a[i] / b[i] of paired samples, 3 decimals. */
function ratioOf(a: readonly number[], b: readonly number[]): Summary {
  const ratios = a.map((m, i) => m / (b[i] as number));
  return { samples: ratios.map((r) => round(r, 3)), median: round(median(ratios), 3), min: round(Math.min(...ratios), 3), max: round(Math.max(...ratios), 3) };
}

/** The breakdown with every figure rounded to 0.1 ms. */
function roundBreakdown(b: MergeBreakdown): MergeBreakdown {
  return {
    ...b,
    wallMs: round(b.wallMs),
    commitMs: round(b.commitMs),
    outsideCommitMs: round(b.outsideCommitMs),
    untilFirstChildMs: round(b.untilFirstChildMs),
    otherChildrenMs: round(b.otherChildrenMs),
    nodeBetweenMs: round(b.nodeBetweenMs),
    byKind: Object.fromEntries(Object.entries(b.byKind).map(([k, v]) => [k, { count: v.count, ms: round(v.ms) }])),
  };
}
