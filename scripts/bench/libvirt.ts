// The libvirt section of `npm run bench`: the same chain merged three ways by the built CLI, alternated run by run from
// identical fresh copies: cold (`volmerge merge`, no VM), live through a raw QMP socket (`volmerge merge --qmp`, a bare
// qemu-system-x86_64), and live through libvirt (`volmerge merge --domain`, a transient domain of a private libvirtd,
// scripts/test-libvirtd). Both VMs are TCG with no guest OS and sit idle; their start is not timed. Each run's ratios
// are taken within the run (libvirt / QMP, libvirt / cold, QMP / cold), and their medians reported.
import { mkdir } from 'node:fs/promises';
import { haveLibvirt, startDomain, testLibvirtd } from '../../test/helpers/libvirt.js';
import { startLiveVm } from '../../test/helpers/live-vm.js';
import { freshCopy, type ChainCopy, type GoldenChain, type Medium } from './chains.js';
import { must } from './proc.js';
import { median, round, summarize, type Summary } from './stats.js';
import type { Workspace } from './workspace.js';

/** The figures of one chain size on one medium. */
export interface LibvirtFigures {
  dataMiB: number;
  medium: Medium;
  coldMergeMs: Summary;
  qmpMergeMs: Summary;
  libvirtMergeMs: Summary;
  /** Medians of the ratios taken within each run. */
  ratios: { libvirtToQmp: number; libvirtToCold: number; qmpToCold: number };
}

/** Why the section did not run, or undefined when it can. */
export function libvirtSkipReason(): string | undefined {
  return haveLibvirt() ? undefined : 'libvirtd and virsh are not installed here (scripts/setup installs them)';
}

/** Milliseconds of one `volmerge merge` with these extra arguments (node's start-up included, as an operator sees it). */
async function timedMerge(cli: string, workspace: Workspace, copy: ChainCopy, name: string, extra: readonly string[]): Promise<number> {
  const argv = ['node', cli, 'merge', '--top', copy.top, '--base', copy.base, '--state-dir', workspace.path(`state-${name}`), '--log-level', 'warn', ...extra];
  return (await must(argv)).ms;
}

/** Runs fn on a fresh copy of the golden chain, then disposes of the copy. */
async function onCopy<T>(workspace: Workspace, golden: GoldenChain, medium: Medium, name: string, fn: (copy: ChainCopy) => Promise<T>): Promise<T> {
  const copy = await freshCopy(workspace, golden, medium, name);
  try {
    return await fn(copy);
  } finally {
    await copy.dispose();
  }
}

/** The three merges of one run, each from its own fresh copy. */
async function oneRun(cli: string, workspace: Workspace, golden: GoldenChain, medium: Medium, run: number): Promise<{ cold: number; qmp: number; libvirt: number }> {
  const tag = `${medium}-${golden.dataMiB}-${run}`;
  const cold = await onCopy(workspace, golden, medium, `lv-cold-${tag}`, (copy) => timedMerge(cli, workspace, copy, `cold-${tag}`, []));
  const qmp = await onCopy(workspace, golden, medium, `lv-qmp-${tag}`, async (copy) => {
    const dir = workspace.path(`lv-qmp-vm-${tag}`);
    await mkdir(dir);
    const vm = await startLiveVm(dir, [copy.base, copy.top]);
    try {
      return await timedMerge(cli, workspace, copy, `qmp-${tag}`, ['--qmp', vm.socket]);
    } finally {
      await vm.kill();
    }
  });
  const libvirt = await onCopy(workspace, golden, medium, `lv-libvirt-${tag}`, async (copy) => {
    const uri = await testLibvirtd();
    const domain = await startDomain(workspace.path(`lv-libvirt-${tag}`), [copy.base, copy.top]);
    try {
      return await timedMerge(cli, workspace, copy, `libvirt-${tag}`, ['--domain', domain.name, '--connect', uri]);
    } finally {
      await domain.kill();
    }
  });
  return { cold, qmp, libvirt };
}

/** Every figure for one golden chain on one medium, with the built CLI. */
export async function measureLibvirt(cli: string, workspace: Workspace, golden: GoldenChain, medium: Medium, runs: number, say: (line: string) => void): Promise<LibvirtFigures> {
  const found: { cold: number; qmp: number; libvirt: number }[] = [];
  for (let run = 0; run < runs; run += 1) {
    const figures = await oneRun(cli, workspace, golden, medium, run);
    say(`bench: libvirt ${medium} run ${run + 1}/${runs}: cold ${figures.cold.toFixed(0)} ms, --qmp ${figures.qmp.toFixed(0)} ms, --domain ${figures.libvirt.toFixed(0)} ms`);
    found.push(figures);
  }
  const ratio = (pick: (f: (typeof found)[number]) => number): number => round(median(found.map(pick)), 2);
  return {
    dataMiB: golden.dataMiB,
    medium,
    coldMergeMs: summarize(found.map((f) => f.cold)),
    qmpMergeMs: summarize(found.map((f) => f.qmp)),
    libvirtMergeMs: summarize(found.map((f) => f.libvirt)),
    ratios: { libvirtToQmp: ratio((f) => f.libvirt / f.qmp), libvirtToCold: ratio((f) => f.libvirt / f.cold), qmpToCold: ratio((f) => f.qmp / f.cold) },
  };
}

/** The figures as a markdown table. */
export function libvirtTable(figures: readonly LibvirtFigures[]): string {
  const rows = figures.map(
    (f) =>
      `| ${f.dataMiB} MiB | ${f.medium} | ${f.coldMergeMs.median} | ${f.qmpMergeMs.median} | ${f.libvirtMergeMs.median} | ` +
      `${f.ratios.libvirtToQmp} | ${f.ratios.libvirtToCold} | ${f.ratios.qmpToCold} |`,
  );
  return [
    '| data in top | medium | cold `volmerge merge` ms | `--qmp` ms | `--domain` (libvirt) ms | libvirt / QMP | libvirt / cold | QMP / cold |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
