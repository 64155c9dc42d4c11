// Renders the benchmark figures as markdown tables (printed, and pasted into README's Performance section).
import type { AgentResult } from './agent-latency.js';
import type { OptionResult } from './commit-options.js';
import { libvirtTable, type LibvirtFigures } from './libvirt.js';
import { liveTable, type LiveFigures } from './live.js';
import type { PairResult } from './pairs.js';
import type { StraceCount } from './process-count.js';
import type { StartupResult } from './startup.js';
import type { FixedTargets, VdsmFigures } from './targets.js';
import type { Summary } from './stats.js';

/** Everything the benchmark measured. */
export interface BenchResults {
  machine: Record<string, string | number>;
  config: Record<string, unknown>;
  startup?: StartupResult;
  pairs: PairResult[];
  strace: StraceCount[];
  commitOptions: OptionResult[];
  agent?: AgentResult;
  /** The fixed cost by the CLI and by the agent against a bare commit, in units of one qemu-img info. */
  fixedTargets?: FixedTargets;
  /** Merges against vdsm's command sequence, per count of stale bitmaps. */
  vdsm?: VdsmFigures[];
  /** A live merge in a running VM against a cold commit of the same chain, and the guest's write latency. */
  live?: LiveFigures[];
  /** The same chain merged cold, live through QMP and live through libvirt, as ratios within each run. */
  libvirt?: LibvirtFigures[];
  /** Why the libvirt section did not run. */
  libvirtSkipped?: string;
  targets: Record<string, string>;
}

const ms = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(0)} ms` : 'n/a');
const size = (mib: number): string => (mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`);

/** The ratio target for a data size, or undefined where the issue sets none. */
function ratioTarget(dataMiB: number): number | undefined {
  if (dataMiB >= 4096) return 1.05;
  if (dataMiB >= 1024) return 1.15;
  return undefined;
}

function mark(ok: boolean | undefined): string {
  return ok === undefined ? '' : ok ? ' ✓' : ' ✗';
}

function pairsTable(pairs: PairResult[]): string[] {
  const lines = [
    '| medium | data in top | `volmerge merge` | bare `qemu-img commit -t none` | merge / commit (median of pairs) | outside the commit | commit MiB/s | dd direct MiB/s | commit speed / dd |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const p of pairs) {
    const target = ratioTarget(p.dataMiB);
    lines.push(
      `| ${p.medium} | ${size(p.dataMiB)} | ${ms(p.mergeMs.median)} | ${ms(p.commitMs.median)} | ${p.ratio.median.toFixed(3)}${target ? ` (≤ ${target})${mark(p.ratio.median <= target)}` : ''} | ` +
        `${ms(p.outsideCommitMs.median)} | ${p.commitMiBps.toFixed(0)} | ${p.ddMiBps.toFixed(0)} | ${p.commitVsDd.toFixed(2)} |`,
    );
  }
  return lines;
}

function fixedCostTable(pairs: PairResult[], strace: StraceCount[]): string[] {
  const lines = [
    '| medium | data | outside the commit | node start-up until the first child | other child processes | node between calls | processes (tracer / strace) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const p of pairs) {
    const b = p.typicalMerge;
    const counted = strace.find((s) => s.medium === p.medium && s.dataMiB === p.dataMiB);
    lines.push(
      `| ${p.medium} | ${size(p.dataMiB)} | ${ms(b.outsideCommitMs)} | ${ms(b.untilFirstChildMs)} | ${ms(b.otherChildrenMs)} | ${ms(b.nodeBetweenMs)} | ${b.processes}${counted ? ` / ${counted.processes}` : ''} |`,
    );
  }
  const first = pairs[0];
  if (first) {
    lines.push('', `Child processes of one merge (${first.medium}, ${size(first.dataMiB)}, ${first.staleBitmaps} stale bitmaps), by kind:`, '');
    lines.push('| process | count | total time |', '|---|---|---|');
    const kinds = Object.entries(first.typicalMerge.byKind).sort((a, b) => b[1].ms - a[1].ms);
    for (const [kind, v] of kinds) lines.push(`| ${kind} | ${v.count} | ${ms(v.ms)} |`);
  }
  return lines;
}

function optionsTable(options: OptionResult[]): string[] {
  const lines = ['| medium | data | commit option | safe for a cold merge | median | MiB/s | speed vs `-t none` | note |', '|---|---|---|---|---|---|---|---|'];
  for (const o of options) {
    lines.push(`| ${o.medium} | ${size(o.dataMiB)} | \`${o.variant}\` | ${o.safe ? 'yes' : 'no'} | ${ms(o.ms.median)} | ${o.MiBps.toFixed(0)} | ${o.speedupVsNone.toFixed(3)} | ${o.note} |`);
  }
  return lines;
}

function startupAndAgentTable(startup: StartupResult | undefined, agent: AgentResult | undefined): string[] {
  const lines = ['| what | median | p90 / p99 | target |', '|---|---|---|---|'];
  for (const c of startup?.commands ?? []) {
    const target = c.name === 'volmerge --help' ? `< 300 ms${mark(c.ms.median < 300)}` : '';
    lines.push(`| \`${c.name}\` (${startup?.runs} runs) | ${ms(c.ms.median)} | p90 ${ms(c.p90)} | ${target} |`);
  }
  for (const m of startup?.modules ?? []) lines.push(`| loading ${m.name} | adds ${ms(m.addsMs)} to an empty node | | |`);
  if (agent && 'skipped' in agent) lines.push(`| \`Host.getJobs\` | not measured: ${agent.skipped} | | p99 < 20 ms |`);
  else if (agent) {
    const row = (label: string, l: { samples: number; p50: number; p99: number }, target: string): string =>
      `| ${label} (${l.samples} calls) | p50 ${l.p50.toFixed(2)} ms | p99 ${l.p99.toFixed(2)} ms | ${target} |`;
    lines.push(row('`Host.getJobs`, agent idle', agent.idle, ''));
    lines.push(row(`\`Host.getJobs\` while ${agent.merges} merges of ${size(agent.dataMiB)} run, kept-alive connection`, agent.busyKeepAlive, `p99 < 20 ms${mark(agent.busyKeepAlive.p99 < 20)}`));
    lines.push(row(`\`Host.getJobs\` while ${agent.merges} merges run, new connection per call`, agent.busyNewConnection, `p99 < 20 ms${mark(agent.busyNewConnection.p99 < 20)}`));
  }
  return lines;
}

const spread = (s: Summary, digits: number, unit = ''): string => `${s.min.toFixed(digits)}${unit} - ${s.max.toFixed(digits)}${unit}`;
const ratio = (s: Summary): string => `${s.median.toFixed(3)} (${spread(s, 3)})`;

/** The targets of issue 23, first: each as measured in this run, against the baseline build when there is one. */
function targetsTable(results: BenchResults): string[] {
  const fixed = results.fixedTargets;
  const labels = fixed?.builds.map((b) => b.label) ?? results.vdsm?.[0]?.builds.map((b) => b.label) ?? ['this'];
  const hasBaseline = labels.includes('baseline') || results.pairs.some((p) => p.baseline);
  const m = results.machine;
  const lines: string[] = [];
  if (fixed) {
    lines.push(
      `Unit: one \`qemu-img info --output json\` of base from a fresh copy with cold caches, as a merge meets it: ${ms(fixed.unit.median)} ` +
        `(${spread(fixed.unit, 0, ' ms')}, ${fixed.runs} runs; warm ${ms(fixed.unitWarm.median)}). Load average (1 min) during the rounds ` +
        `${fixed.load.median.toFixed(2)} (${spread(fixed.load, 2)}).`,
      '',
    );
  }
  lines.push(`| target | this build (${m.commit}) | ${hasBaseline ? `baseline (${m.baseline}) | ` : ''}goal |`, `|---|---|${hasBaseline ? '---|' : ''}---|`);
  for (const p of results.pairs) {
    const goal = ratioTarget(p.dataMiB);
    if (goal === undefined) continue;
    const base = hasBaseline ? ` ${p.baseline ? ratio(p.baseline.ratio) : 'n/a'} |` : '';
    lines.push(`| merge / bare commit, ${p.medium}, ${size(p.dataMiB)} in top, ${p.staleBitmaps} stale bitmaps | ${ratio(p.ratio)}${mark(p.ratio.median <= goal)} |${base} ≤ ${goal} |`);
  }
  if (fixed) {
    for (const [what, key, keyMs, goal] of [
      ['CLI `volmerge merge`', 'cliUnits', 'cliFixed', 8],
      ['agent `SDM.merge` to its "done" event', 'agentUnits', 'agentFixed', 5],
    ] as const) {
      const cell = (label: string): string => {
        const b = fixed.builds.find((x) => x.label === label);
        return b ? `${b[key].median.toFixed(1)} u = ${ms(b[keyMs].median)} (${spread(b[key], 1, ' u')})${label === 'this' ? mark(b[key].median <= goal) : ''}` : 'n/a';
      };
      lines.push(`| fixed cost by the ${what}: merge minus bare commit, ${size(fixed.dataMiB)} in top, ${fixed.staleBitmaps} stale bitmaps | ${cell('this')} |${hasBaseline ? ` ${cell('baseline')} |` : ''} ≤ ${goal} u |`);
    }
  }
  for (const v of results.vdsm ?? []) {
    for (const [what, key] of [['CLI', 'cliRatio'], ['agent', 'agentRatio']] as const) {
      const cell = (label: string): string => {
        const b = v.builds.find((x) => x.label === label);
        return b ? `${ratio(b[key])}${label === 'this' ? mark(b[key].median < 1) : ''}` : 'n/a';
      };
      lines.push(`| ${what} merge / vdsm's sequence (${ms(v.vdsm.median)}), ${v.staleBitmaps} stale bitmaps, ${size(v.dataMiB)} in top, ${v.runs} rounds | ${cell('this')} |${hasBaseline ? ` ${cell('baseline')} |` : ''} < 1 |`);
    }
  }
  return lines;
}

/** The fixed-cost rounds in milliseconds, per build. */
function fixedDetails(fixed: FixedTargets): string[] {
  const lines = [
    `Wall times behind the fixed cost (files, ${size(fixed.dataMiB)} in top, ${fixed.staleBitmaps} stale bitmaps, ${fixed.runs} rounds alternated, medians and ranges):`,
    '',
    '| what | median | range |',
    '|---|---|---|',
    `| \`qemu-img info\` of base, cold (the unit) | ${ms(fixed.unit.median)} | ${spread(fixed.unit, 0, ' ms')} |`,
    `| bare \`qemu-img commit -t none\` | ${ms(fixed.commit.median)} | ${spread(fixed.commit, 0, ' ms')} |`,
  ];
  for (const b of fixed.builds) {
    lines.push(`| \`volmerge merge\` (${b.label}, ${b.commit}) | ${ms(b.cli.median)} | ${spread(b.cli, 0, ' ms')} |`);
    lines.push(`| agent \`SDM.merge\` to done (${b.label}, ${b.commit}) | ${ms(b.agent.median)} | ${spread(b.agent, 0, ' ms')} |`);
  }
  for (const b of fixed.builds) {
    if (!b.timeline || !b.breakdown) continue;
    const d = b.breakdown;
    lines.push(
      '',
      `One traced CLI merge (${b.label}, ${b.commit}; the median of 3 after the rounds): ${ms(d.wallMs)}, of which the commit ${ms(d.commitMs)}; ` +
        `outside it: node until its first child ${ms(d.untilFirstChildMs)}, child processes and daemon commands ${ms(d.otherChildrenMs)}, ` +
        `node between them ${ms(d.nodeBetweenMs)}; ${d.processes} processes.`,
      '',
      '| ms from node start | event |',
      '|---|---|',
      ...b.timeline.map((e) => `| ${e.atMs.toFixed(1)} | ${e.what} |`),
    );
  }
  return lines;
}

/** All the tables, in the README's order. */
export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const sections = [
    `Measured ${m.date} (volmerge ${m.commit}${m.baseline ? ` against ${m.baseline}` : ''}) on ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB RAM, ${m.kernel}, node ${m.node}, ${m.qemuImg}; ` +
      `chains on ${m.filesystem}; ${results.config.runs} runs each, medians; load average (1/5/15 min) ${m.loadAtStart} at the start, ${m.loadAtEnd} at the end.`,
    '',
    ...targetsTable(results),
    '',
    `Merge against the bare commit (each run from an identical fresh copy; top holds the data, base ${results.pairs[0]?.staleBitmaps ?? 32} stale bitmaps):`,
    '',
    ...pairsTable(results.pairs),
    '',
    'Where a merge spends the time outside the commit (the run with the median outside-commit time):',
    '',
    ...fixedCostTable(results.pairs, results.strace),
  ];
  if (results.fixedTargets) sections.push('', ...fixedDetails(results.fixedTargets));
  if (results.commitOptions.length > 0) sections.push('', 'qemu-img commit options (each from a fresh copy, no cached pages):', '', ...optionsTable(results.commitOptions));
  if (results.live && results.live.length > 0) {
    sections.push('', 'Live merge in a running VM (TCG, no guest OS) against a cold commit of the same chain, and one 64 KiB guest write:', '', liveTable(results.live));
  }
  if (results.libvirt && results.libvirt.length > 0) {
    sections.push('', 'The same chain merged three ways by the CLI (the VMs idle, TCG, no guest OS; ratios are medians of each run\'s own ratios):', '', libvirtTable(results.libvirt));
  } else if (results.libvirtSkipped) sections.push('', `Live merge through libvirt: not measured (${results.libvirtSkipped}).`);
  sections.push('', 'Start-up and agent:', '', ...startupAndAgentTable(results.startup, results.agent));
  return sections.join('\n');
}
