// Renders the benchmark figures as markdown tables (printed, and pasted into README's Performance section).
import type { AgentResult } from './agent-latency.js';
import type { FixedCostResult } from './fixed-cost.js';
import type { OptionResult } from './commit-options.js';
import { libvirtTable, type LibvirtFigures } from './libvirt.js';
import { liveTable, type LiveFigures } from './live.js';
import type { PairResult } from './pairs.js';
import type { StraceCount } from './process-count.js';
import type { StartupResult } from './startup.js';

/** Everything the benchmark measured. */
export interface BenchResults {
  machine: Record<string, string | number>;
  config: Record<string, unknown>;
  startup?: StartupResult;
  pairs: PairResult[];
  strace: StraceCount[];
  commitOptions: OptionResult[];
  agent?: AgentResult;
  /** The fixed cost by the CLI and by the agent (files, stale bitmaps, a small top). */
  fixed?: FixedCostResult;
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
  if (dataMiB >= 4096) return 1.03;
  if (dataMiB >= 1024) return 1.1;
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
        `${ms(p.outsideCommitMs.median)}${mark(p.outsideCommitMs.median < 250)} | ${p.commitMiBps.toFixed(0)} | ${p.ddMiBps.toFixed(0)} | ${p.commitVsDd.toFixed(2)} |`,
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

/** The whole report as markdown. */
/** The fixed cost by both ways in, against the targets (300 ms by the CLI, 150 ms by the agent). */
function pathsTable(fixed: FixedCostResult): string[] {
  const row = (path: string, summary: FixedCostResult['cli'], target: number): string =>
    `| ${path} | ${ms(summary.median)}${mark(summary.median <= target)} | ${ms(summary.min)} - ${ms(summary.max)} | ${target} ms |`;
  return [
    `The fixed cost of a merge by each way in (files, ${fixed.staleBitmaps} stale bitmaps in base, ${size(fixed.dataMiB)} in top; wall time minus the commit process, runs alternated, medians):`,
    '',
    '| path | outside the commit | range | target |',
    '|---|---|---|---|',
    row('`volmerge merge` (node start-up included)', fixed.cli, 300),
    row('agent `SDM.merge` until its "done" event', fixed.agent, 150),
  ];
}

/** All the tables, in the README's order. */
export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const sections = [
    `Measured ${m.date} (volmerge ${m.commit}) on ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB RAM, ${m.kernel}, node ${m.node}, ${m.qemuImg}; ` +
      `chains on ${m.filesystem}; ${results.config.runs} runs each, medians; load average (1/5/15 min) ${m.loadAtStart} at the start, ${m.loadAtEnd} at the end.`,
    '',
    `Merge against the bare commit (each run from an identical fresh copy; top holds the data, base ${results.pairs[0]?.staleBitmaps ?? 32} stale bitmaps):`,
    '',
    ...pairsTable(results.pairs),
    '',
    'Where a merge spends the time outside the commit (the run with the median outside-commit time):',
    '',
    ...fixedCostTable(results.pairs, results.strace),
  ];
  if (results.fixed) sections.push('', ...pathsTable(results.fixed));
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
