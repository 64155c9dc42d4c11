// Does any qemu-img commit option make the commit faster? Cache modes and AIO engines, alternated, each on a fresh copy.
import { freshCopy, type ChainCopy, type GoldenChain, type Medium } from './chains.js';
import { exec } from './proc.js';
import { median, round, summarize, type Summary } from './stats.js';
import type { Workspace } from './workspace.js';

/** One way to run the commit. */
interface Variant {
  name: string;
  /** Whether the data is on stable storage when qemu-img exits 0 (a cold merge needs that). */
  safe: boolean;
  note: string;
  argv(copy: ChainCopy): string[];
}

/** --image-opts for top with an AIO engine on top's and base's protocol nodes (cache mode from -t). */
function withAio(copy: ChainCopy, aio: string): string {
  const driver = copy.medium === 'file' ? 'file' : 'host_device';
  return `driver=qcow2,file.driver=${driver},file.filename=${copy.top},file.aio=${aio},backing.file.aio=${aio}`;
}

const VARIANTS: Variant[] = [
  { name: '-t none', safe: true, note: 'what volmerge runs: O_DIRECT, one flush at the end', argv: (c) => ['qemu-img', 'commit', '-t', 'none', '-b', c.base, c.top] },
  {
    name: '-t writeback',
    safe: true,
    note: 'page cache, flushed (fsync) before exit',
    argv: (c) => ['qemu-img', 'commit', '-t', 'writeback', '-b', c.base, c.top],
  },
  {
    name: '-t directsync',
    safe: true,
    note: 'O_DIRECT and O_DSYNC on every write',
    argv: (c) => ['qemu-img', 'commit', '-t', 'directsync', '-b', c.base, c.top],
  },
  {
    name: '-t none, aio=native',
    safe: true,
    note: 'Linux AIO instead of the thread pool (--image-opts)',
    argv: (c) => ['qemu-img', 'commit', '--image-opts', '-t', 'none', '-b', c.base, withAio(c, 'native')],
  },
  {
    name: '-t none, aio=io_uring',
    safe: true,
    note: 'io_uring instead of the thread pool (--image-opts)',
    argv: (c) => ['qemu-img', 'commit', '--image-opts', '-t', 'none', '-b', c.base, withAio(c, 'io_uring')],
  },
  {
    name: '-t unsafe',
    safe: false,
    note: 'reference only: never flushes, so a crash after "done" can lose data; not usable',
    argv: (c) => ['qemu-img', 'commit', '-t', 'unsafe', '-b', c.base, c.top],
  },
];

/** The figures of one variant on one medium. */
export interface OptionResult {
  medium: Medium;
  dataMiB: number;
  variant: string;
  safe: boolean;
  note: string;
  ms: Summary;
  MiBps: number;
  /** median(-t none) / median(this): above 1 is faster than volmerge's choice. */
  speedupVsNone: number;
}

/** Runs every variant `runs` times, rotating their order each round, each from a fresh copy with no cached pages. */
export async function measureCommitOptions(
  workspace: Workspace,
  golden: GoldenChain,
  medium: Medium,
  runs: number,
  say: (line: string) => void,
): Promise<OptionResult[]> {
  const times = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  const failed = new Map<string, string>();
  for (let round_ = 0; round_ < runs; round_ += 1) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round_) % VARIANTS.length] as Variant);
    for (const variant of order) {
      if (failed.has(variant.name)) continue;
      const copy = await freshCopy(workspace, golden, medium, 'run-option');
      try {
        const result = await exec(variant.argv(copy));
        if (result.code === 0) times.get(variant.name)?.push(result.ms);
        else failed.set(variant.name, result.stderr.trim().split('\n')[0] ?? `exit ${result.code}`);
      } finally {
        await copy.dispose();
      }
    }
    say(`  ${medium} ${golden.dataMiB} MiB commit options round ${round_ + 1}/${runs}: ${[...times].map(([n, t]) => `${n} ${(t[t.length - 1] ?? NaN).toFixed(0)}`).join(', ')}`);
  }
  const baseline = median(times.get('-t none') ?? []);
  return VARIANTS.map((variant) => {
    const samples = times.get(variant.name) ?? [];
    const note = failed.has(variant.name) ? `${variant.note}; failed here: ${failed.get(variant.name)}` : variant.note;
    const ms = median(samples);
    return {
      medium,
      dataMiB: golden.dataMiB,
      variant: variant.name,
      safe: variant.safe,
      note,
      ms: summarize(samples),
      MiBps: round(golden.dataMiB / (ms / 1000)),
      speedupVsNone: round(baseline / ms, 3),
    };
  });
}
