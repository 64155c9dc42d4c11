// Start-up cost: `volmerge --help` and `volmerge merge --help` against a bare `node -e 0`, alternated.
import { must } from './proc.js';
import { percentile, round, summarize, type Summary } from './stats.js';
import { CLI, TRACER } from './volmerge.js';

/** The start-up figures. */
export interface StartupResult {
  runs: number;
  /** Each command's wall time; p90 next to the median. */
  commands: { name: string; argv: string[]; ms: Summary; p90: number }[];
}

const COMMANDS: { name: string; argv: string[] }[] = [
  { name: 'node -e 0', argv: ['node', '-e', '0'] },
  { name: 'node --import spawn-trace -e 0', argv: ['node', '--import', TRACER, '-e', '0'] },
  { name: 'volmerge --help', argv: ['node', CLI, '--help'] },
  { name: 'volmerge merge --help', argv: ['node', CLI, 'merge', '--help'] },
];

/** Runs each command `runs` times, rotating the order each round; the first round only warms the caches and is dropped. */
export async function measureStartup(runs: number): Promise<StartupResult> {
  const times = new Map<string, number[]>(COMMANDS.map((c) => [c.name, []]));
  for (let round_ = -1; round_ < runs; round_ += 1) {
    for (let i = 0; i < COMMANDS.length; i += 1) {
      const command = COMMANDS[(i + Math.max(0, round_)) % COMMANDS.length] as (typeof COMMANDS)[number];
      const result = await must(command.argv);
      if (round_ >= 0) times.get(command.name)?.push(result.ms);
    }
  }
  return {
    runs,
    commands: COMMANDS.map((c) => {
      const samples = times.get(c.name) ?? [];
      return { name: c.name, argv: c.argv, ms: summarize(samples), p90: round(percentile(samples, 0.9)) };
    }),
  };
}
