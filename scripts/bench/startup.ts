// Start-up cost: `volmerge --help` and `volmerge merge --help` against a bare `node -e 0`, alternated.
import { must } from './proc.js';
import { median, percentile, round, summarize, type Summary } from './stats.js';
import type { Build } from './volmerge.js';

/** The start-up figures. */
export interface StartupResult {
  runs: number;
  /** Each command's wall time; p90 next to the median. */
  commands: { name: string; argv: string[]; ms: Summary; p90: number }[];
  /** What loading one module (or compiling the schemas) adds to an empty node run, median of paired differences. */
  modules: { name: string; addsMs: number }[];
}

/** Loads that the CLI pays for or used to: each snippet runs in a fresh node, from the package root. */
const MODULES: { name: string; code: string }[] = [
  { name: 'yargs', code: "await import('yargs'); await import('yargs/helpers');" },
  { name: 'winston', code: "await import('winston');" },
  { name: 'execa', code: "await import('execa');" },
  { name: 'ajv + compiling every schema at run time', code: "const s = await import('./dist/src/schema-files.js'); const { Ajv } = await import('ajv'); const a = new Ajv(s.AJV_OPTIONS); for (const [f, t] of Object.entries(s.readSchemaTexts())) a.addSchema(JSON.parse(t), f); for (const f of Object.keys(s.readSchemaTexts())) a.getSchema(f);" },
  { name: 'build-time compiled validators (src/schema.ts)', code: "const s = await import('./dist/src/schema.js'); s.validatorFor('journal.schema.json');" },
];

/** The commands compared, for a build. */
function commands(build: Build): { name: string; argv: string[] }[] {
  return [
    { name: 'node -e 0', argv: ['node', '-e', '0'] },
    // What the environment's NODE_EXTRA_CA_CERTS (when set) costs every node start; the volmerge command drops it.
    { name: 'env -u NODE_EXTRA_CA_CERTS node -e 0', argv: ['env', '-u', 'NODE_EXTRA_CA_CERTS', 'node', '-e', '0'] },
    { name: 'node --require spawn-trace -e 0', argv: ['node', '--require', build.tracer, '-e', '0'] },
    { name: 'volmerge --help', argv: [build.cli, '--help'] },
    { name: 'volmerge merge --help', argv: [build.cli, 'merge', '--help'] },
  ];
}

/** Runs each command `runs` times, rotating the order each round; the first round only warms the caches and is dropped. */
export async function measureStartup(build: Build, runs: number): Promise<StartupResult> {
  const COMMANDS = commands(build);
  const times = new Map<string, number[]>(COMMANDS.map((c) => [c.name, []]));
  for (let round_ = -1; round_ < runs; round_ += 1) {
    for (let i = 0; i < COMMANDS.length; i += 1) {
      const command = COMMANDS[(i + Math.max(0, round_)) % COMMANDS.length] as (typeof COMMANDS)[number];
      const result = await must(command.argv);
      if (round_ >= 0) times.get(command.name)?.push(result.ms);
    }
  }
  // Each module run is paired with an empty ESM run just before it; the median of the pairs' differences is reported.
  const adds = new Map<string, number[]>(MODULES.map((m) => [m.name, []]));
  for (let i = 0; i < runs; i += 1) {
    for (const m of MODULES) {
      const empty = await must(['node', '--input-type=module', '-e', ''], { cwd: build.root });
      const loaded = await must(['node', '--input-type=module', '-e', m.code], { cwd: build.root });
      adds.get(m.name)?.push(loaded.ms - empty.ms);
    }
  }
  const modules = MODULES.map((m) => ({ name: m.name, addsMs: round(median(adds.get(m.name) ?? [])) }));
  return {
    runs,
    modules,
    commands: COMMANDS.map((c) => {
      const samples = times.get(c.name) ?? [];
      return { name: c.name, argv: c.argv, ms: summarize(samples), p90: round(percentile(samples, 0.9)) };
    }),
  };
}
