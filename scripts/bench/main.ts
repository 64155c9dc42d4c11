// `npm run bench`: volmerge merge against a bare qemu-img commit and a dd copy, commit options, start-up and agent latency.
// Writes the figures to bench-results.json and prints them as markdown tables. Needs root (loop devices) and qemu-utils.
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { measureAgent } from './agent-latency.js';
import { buildGolden, type GoldenChain, type Medium } from './chains.js';
import { measureCommitOptions } from './commit-options.js';
import { libvirtSkipReason, measureLibvirt } from './libvirt.js';
import { startAgent } from './agent-runner.js';
import { measureLive } from './live.js';
import { measurePairs } from './pairs.js';
import { exec } from './proc.js';
import { straceCount } from './process-count.js';
import { renderMarkdown, type BenchResults } from './report.js';
import { measureStartup } from './startup.js';
import { measureAgainstVdsm, measureFixedTargets, type Contender } from './targets.js';
import { checkoutCommit, snapshotBuild } from './volmerge.js';
import { withWorkspace } from './workspace.js';

const USAGE = `usage: npm run bench -- [options]
  --sizes LIST         MiB of data in top, comma-separated (default 256,1024)
  --big                also 4096 MiB (4 GiB)
  --runs N             runs per figure, median reported (default 5, at least 5 for published figures)
  --media LIST         file,loop (default both)
  --sections LIST      targets,vdsm,startup,pairs,options,agent,live,libvirt (default all; fixed = targets)
  --baseline DIR       also measure the build in DIR (a built checkout, e.g. a clone at an older commit), alternated
                       with this one in targets, vdsm and pairs: before and after side by side
  --fixed-size MiB     data in top for the fixed-cost targets and the vdsm comparison (default 64)
  --vdsm-stale LIST    stale bitmaps in base for the comparison with vdsm's command sequence (default 0,32,1000)
  --vdsm-runs N        rounds per count in the vdsm comparison (default 5; at most 3 from 500 stale bitmaps on)
  --option-size MiB    data size for the commit-option comparison (default 1024)
  --agent-size MiB     data size of each of the 4 agent merges (default 1024)
  --live-size MiB      data in top for the live merge against the cold commit, per medium (default 256)
  --live-writes N      guest writes per latency sample set in the live section (default 200)
  --libvirt-size MiB   data in top for the libvirt section: cold, --qmp and --domain merges of one chain (default 256)
  --stale N            stale bitmaps in base (default 32)
  --dir DIR            where chains are built (default /var/tmp)
  --out FILE           figures as JSON (default bench-results.json)
  --report FILE        print the tables of an earlier run's JSON and exit`;

function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

function positiveInt(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number above 0, not ${text}`);
  return value;
}

/** The benchmark's settings from argv. */
function settings(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '256,1024' },
      big: { type: 'boolean', default: false },
      runs: { type: 'string', default: '5' },
      media: { type: 'string', default: 'file,loop' },
      sections: { type: 'string', default: 'targets,vdsm,startup,pairs,options,agent,live,libvirt' },
      baseline: { type: 'string' },
      'fixed-size': { type: 'string', default: '64' },
      'vdsm-stale': { type: 'string', default: '0,32,1000' },
      'vdsm-runs': { type: 'string', default: '5' },
      'option-size': { type: 'string', default: '1024' },
      'agent-size': { type: 'string', default: '1024' },
      'live-size': { type: 'string', default: '256' },
      'live-writes': { type: 'string', default: '200' },
      'libvirt-size': { type: 'string', default: '256' },
      stale: { type: 'string', default: '32' },
      dir: { type: 'string', default: '/var/tmp' },
      out: { type: 'string', default: 'bench-results.json' },
      report: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const sizes = list(values.sizes).map((s) => positiveInt(s, '--sizes'));
  if (values.big && !sizes.includes(4096)) sizes.push(4096);
  for (const s of sizes) if (s % 64 !== 0) throw new Error(`--sizes: ${s} is not a multiple of 64 MiB`);
  const media = list(values.media);
  for (const m of media) if (m !== 'file' && m !== 'loop') throw new Error(`--media: ${m} is neither file nor loop`);
  return {
    sizes,
    runs: positiveInt(values.runs, '--runs'),
    media: media as Medium[],
    sections: new Set(list(values.sections).map((name) => (name === 'fixed' ? 'targets' : name))),
    baseline: values.baseline ? resolve(values.baseline) : undefined,
    vdsmStale: list(values['vdsm-stale']).map((s) => Number(s)),
    vdsmRuns: positiveInt(values['vdsm-runs'], '--vdsm-runs'),
    optionSize: positiveInt(values['option-size'], '--option-size'),
    agentSize: positiveInt(values['agent-size'], '--agent-size'),
    fixedSize: positiveInt(values['fixed-size'], '--fixed-size'),
    liveSize: positiveInt(values['live-size'], '--live-size'),
    liveWrites: positiveInt(values['live-writes'], '--live-writes'),
    libvirtSize: positiveInt(values['libvirt-size'], '--libvirt-size'),
    stale: Number(values.stale),
    dir: values.dir,
    out: resolve(values.out),
    report: values.report,
  };
}

/** What the figures were measured on. */
async function machine(dir: string): Promise<Record<string, string | number>> {
  const firstLine = async (argv: string[]): Promise<string> => (await exec(argv)).stdout.split('\n')[0]?.trim() ?? '';
  return {
    date: new Date().toISOString().slice(0, 10),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    memGiB: Math.round(totalmem() / 2 ** 30),
    freeMemGiB: Math.round(freemem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    node: process.versions.node,
    qemuImg: await firstLine(['qemu-img', '--version']),
    filesystem: (await firstLine(['findmnt', '-n', '-o', 'FSTYPE,SOURCE', '--target', dir])).replace(/\s+/, ' on ') || dir,
    loadAtStart: loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

async function main(): Promise<void> {
  const options = settings(process.argv.slice(2));
  if (options.report) {
    console.log(renderMarkdown(JSON.parse(await readFile(options.report, 'utf8')) as BenchResults));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('run the benchmark as root: it attaches loop devices and drops file pages from the cache');
  const say = (line: string): void => console.error(line);
  const started = Date.now();
  const results: BenchResults = {
    machine: await machine(options.dir),
    config: { runs: options.runs, sizesMiB: options.sizes, media: options.media, staleBitmaps: options.stale, sections: [...options.sections] },
    pairs: [],
    strace: [],
    commitOptions: [],
    targets: {
      ratio: 'merge / bare commit <= 1.15 at 1 GiB, <= 1.05 at 4 GiB (32 stale bitmaps)',
      fixedCli: 'merge minus bare commit by the CLI <= 8 units of one cold qemu-img info of base',
      fixedAgent: 'SDM.merge to done minus bare commit <= 5 units',
      vdsm: 'a merge faster than vdsm\'s command sequence at 0, 32 and 1000 stale bitmaps',
      help: 'volmerge --help < 300 ms',
      getJobs: 'Host.getJobs p99 < 20 ms with 4 merges running',
    },
  };

  await withWorkspace(options.dir, async (workspace) => {
    const build = await snapshotBuild(workspace.path('package'));
    results.machine.commit = await checkoutCommit();
    if (options.sections.has('startup')) {
      say('bench: start-up');
      results.startup = await measureStartup(build, Math.max(options.runs, 15));
    }
    const baselineBuild = options.baseline ? await snapshotBuild(workspace.path('baseline'), options.baseline) : undefined;
    if (options.baseline) results.machine.baseline = await checkoutCommit(options.baseline);
    const goldens = new Map<string, GoldenChain>();
    const golden = async (dataMiB: number, stale = options.stale): Promise<GoldenChain> => {
      let chain = goldens.get(`${dataMiB}/${stale}`);
      if (!chain) {
        say(`bench: building a chain with ${dataMiB} MiB in top and ${stale} stale bitmaps in base`);
        chain = await buildGolden(workspace, dataMiB, stale);
        goldens.set(`${dataMiB}/${stale}`, chain);
      }
      return chain;
    };
    const contenders: Contender[] = [];
    try {
      if (options.sections.has('targets') || options.sections.has('vdsm')) {
        contenders.push({ label: 'this', commit: String(results.machine.commit), build, agent: await startAgent(build, workspace.path('agent-this')) });
        if (baselineBuild) {
          const commit = String(results.machine.baseline);
          contenders.push({ label: 'baseline', commit, build: baselineBuild, agent: await startAgent(baselineBuild, workspace.path('agent-baseline')) });
        }
      }
      if (options.sections.has('targets')) {
        say(`bench: targets: fixed cost by the CLI and by the agent in units of one qemu-img info, ${options.fixedSize} MiB in top`);
        results.fixedTargets = await measureFixedTargets(workspace, await golden(options.fixedSize), contenders, Math.max(options.runs, 9), say);
      }
      if (options.sections.has('vdsm')) {
        for (const stale of options.vdsmStale) {
          const runs = stale >= 500 ? Math.min(options.vdsmRuns, 3) : options.vdsmRuns;
          say(`bench: against vdsm's command sequence, ${stale} stale bitmaps, ${runs} rounds`);
          (results.vdsm ??= []).push(await measureAgainstVdsm(workspace, await golden(options.fixedSize, stale), contenders, runs, say));
        }
      }
    } finally {
      for (const c of contenders) await c.agent.stop();
    }
    if (options.sections.has('pairs')) {
      for (const medium of options.media) {
        for (const dataMiB of options.sizes) {
          say(`bench: ${medium}, ${dataMiB} MiB: merge / bare commit / dd, alternated`);
          const baseline = baselineBuild ? { build: baselineBuild, commit: String(results.machine.baseline) } : undefined;
          results.pairs.push(await measurePairs(build, workspace, await golden(dataMiB), medium, options.runs, say, baseline));
        }
        const counted = await straceCount(build, workspace, await golden(Math.min(...options.sizes)), medium);
        if (counted) results.strace.push(counted);
      }
    }
    if (options.sections.has('options')) {
      for (const medium of options.media) {
        say(`bench: ${medium}, ${options.optionSize} MiB: qemu-img commit options`);
        results.commitOptions.push(...(await measureCommitOptions(workspace, await golden(options.optionSize), medium, options.runs, say)));
      }
    }
    if (options.sections.has('agent')) {
      say(`bench: agent with 4 merges of ${options.agentSize} MiB`);
      results.agent = await measureAgent(build, workspace, await golden(options.agentSize), 4, say);
    }
    if (options.sections.has('live')) {
      for (const medium of options.media) {
        say(`bench: ${medium}, ${options.liveSize} MiB: live merge in a running VM (volmerge merge --qmp) against a cold commit, guest write latency`);
        (results.live ??= []).push(await measureLive(workspace, await golden(options.liveSize), medium, Math.min(options.runs, 3), options.liveWrites, build.cli));
      }
    }
    if (options.sections.has('libvirt')) {
      const skip = libvirtSkipReason();
      if (skip) {
        say(`bench: libvirt section skipped: ${skip}`);
        results.libvirtSkipped = skip;
      } else {
        for (const medium of options.media) {
          say(`bench: ${medium}, ${options.libvirtSize} MiB: the same chain merged cold, live with --qmp and live through libvirt with --domain, alternated`);
          (results.libvirt ??= []).push(await measureLibvirt(build.cli, workspace, await golden(options.libvirtSize), medium, Math.min(options.runs, 3), say));
        }
      }
    }
  });

  results.machine.loadAtEnd = loadavg().map((l) => l.toFixed(2)).join(' ');
  results.machine.benchSeconds = Math.round((Date.now() - started) / 1000);
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(renderMarkdown(results));
  say(`bench: figures in ${options.out} (${results.machine.benchSeconds} s)`);
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
