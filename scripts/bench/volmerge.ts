// Benchmark helper: runs the built CLI (optionally under the spawn tracer) and reads what one traced merge did.
import { cp, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec, type Timed } from './proc.js';
import type { SpawnTrace, TracedChild } from './spawn-trace.cjs';

/** The package root of this checkout (this file is dist/scripts/bench/volmerge.js). */
const CHECKOUT = fileURLToPath(new URL('../../../', import.meta.url));

/** A built package: its root, the CLI and the spawn tracer. */
export interface Build {
  root: string;
  cli: string;
  tracer: string;
}

/** The build inside a package root. */
function buildAt(root: string): Build {
  return { root, cli: join(root, 'dist/src/volmerge.cjs'), tracer: join(root, 'dist/scripts/bench/spawn-trace.cjs') };
}

/**
 * Copies the build of a checkout (this one unless from names another package root, built: dist/src, schemas/,
 * package.json; node_modules linked) into dir, with this checkout's spawn tracer, so that a rebuild of the shared dist/
 * by someone else during the benchmark cannot change what is measured.
 */
export async function snapshotBuild(dir: string, from = CHECKOUT): Promise<Build> {
  await mkdir(join(dir, 'dist/scripts/bench'), { recursive: true });
  await cp(join(from, 'dist/src'), join(dir, 'dist/src'), { recursive: true });
  await cp(join(CHECKOUT, 'dist/scripts/bench/spawn-trace.cjs'), join(dir, 'dist/scripts/bench/spawn-trace.cjs'));
  await cp(join(from, 'schemas'), join(dir, 'schemas'), { recursive: true });
  await cp(join(from, 'package.json'), join(dir, 'package.json'));
  await symlink(join(from, 'node_modules'), join(dir, 'node_modules'));
  return buildAt(dir);
}

/** The commit a checkout (this one by default) is at, with "+changes" when files differ from it. */
export async function checkoutCommit(root = CHECKOUT): Promise<string> {
  const head = (await exec(['git', '-C', root, 'rev-parse', '--short', 'HEAD'])).stdout.trim() || 'unknown';
  const dirty = (await exec(['git', '-C', root, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim();
  return dirty ? `${head}+changes` : head;
}

/** One `volmerge merge --json` run with its trace. */
export interface TracedMerge {
  wall: Timed;
  trace: SpawnTrace;
}

/**
 * Runs `volmerge merge --top T --base B --json` as a shell runs the installed command (the bin file itself, so its
 * first line decides how node starts; the tracer comes in through NODE_OPTIONS) and returns its run; throws unless it
 * printed status done.
 */
export async function plainMerge(build: Build, top: string, base: string, stateDir: string, env: Record<string, string> = {}): Promise<Timed> {
  const traced: Record<string, string> = env.VOLMERGE_BENCH_TRACE ? { NODE_OPTIONS: `--require ${build.tracer}` } : {};
  const wall = await exec([build.cli, 'merge', '--top', top, '--base', base, '--json'], {
    env: { VOLMERGE_STATE_DIR: stateDir, VOLMERGE_LOCK_DIR: `${stateDir}-locks`, ...traced, ...env },
  });
  let status = '';
  try {
    status = (JSON.parse(wall.stdout) as { status?: string }).status ?? '';
  } catch {
    status = '';
  }
  if (wall.code !== 0 || status !== 'done') {
    throw new Error(`volmerge merge --top ${top} --base ${base} (${build.root}) exited ${wall.code}: ${wall.stdout.trim()} ${wall.stderr.trim()}`.slice(0, 2000));
  }
  return wall;
}

/** Runs `volmerge merge` under the tracer; throws unless it printed status done. */
export async function tracedMerge(build: Build, top: string, base: string, stateDir: string, traceFile: string): Promise<TracedMerge> {
  await rm(traceFile, { force: true });
  const wall = await plainMerge(build, top, base, stateDir, { VOLMERGE_BENCH_TRACE: traceFile });
  const trace = JSON.parse(await readFile(traceFile, 'utf8')) as SpawnTrace;
  return { wall, trace };
}

/** A short name for a child process: the program, and for qemu-img its subcommand and main flag. */
export function childKind(child: TracedChild): string {
  const program = basename(child.argv[0] ?? '?');
  if (program !== 'qemu-img' && !program.includes('qemu-img')) return program;
  const [sub, ...rest] = child.argv.slice(1);
  if (sub === 'info') return rest.includes('--backing-chain') ? 'qemu-img info --backing-chain' : 'qemu-img info';
  if (sub === 'bitmap') return rest.includes('--remove') ? 'qemu-img bitmap --remove' : rest.includes('--merge') ? 'qemu-img bitmap --merge' : 'qemu-img bitmap';
  return `qemu-img ${sub ?? '?'}`;
}

/** Milliseconds a traced child ran (0 when its end was not seen). */
export function childMs(child: TracedChild): number {
  return child.endMs === undefined ? 0 : child.endMs - child.startMs;
}

/** Where the time of one merge went. */
export interface MergeBreakdown {
  wallMs: number;
  /** The qemu-img commit process, start to exit. */
  commitMs: number;
  /** Everything else: wall minus the commit. */
  outsideCommitMs: number;
  /** From node's start to its first child process (start-up, module loading, inspection before the first call). */
  untilFirstChildMs: number;
  /** Time in child processes other than the commit. */
  otherChildrenMs: number;
  /** Node's own time outside start-up and child processes (between and after calls, plus spawning the CLI). */
  nodeBetweenMs: number;
  processes: number;
  /** Processes and milliseconds by kind. */
  byKind: Record<string, { count: number; ms: number }>;
}

/** Whether a child is the merge's qemu-storage-daemon. */
function isDaemon(child: TracedChild): boolean {
  return child.argv.some((arg) => arg.includes('qemu-storage-daemon'));
}

/** The commit inside a daemon session: from block-commit sent to job-dismiss answered (the copy and its end). */
function daemonCommit(child: TracedChild): { fromMs: number; toMs: number } | undefined {
  const commands = child.qmp ?? [];
  const started = commands.find((c) => c.execute === 'block-commit');
  const dismissed = commands.find((c) => c.execute === 'job-dismiss' && started && c.sentMs >= started.sentMs);
  if (!started || dismissed?.repliedMs === undefined) return undefined;
  return { fromMs: started.sentMs, toMs: dismissed.repliedMs };
}

/** Splits a traced merge's wall time into the commit (qemu-img's, or the daemon's block-commit) and everything outside it. */
export function breakdown(merge: TracedMerge): MergeBreakdown {
  const { children } = merge.trace;
  const inDaemon = children.filter(isDaemon).map(daemonCommit).find((span) => span !== undefined);
  const commit = children.filter((c) => childKind(c) === 'qemu-img commit');
  const commitMs = inDaemon ? inDaemon.toMs - inDaemon.fromMs : commit.reduce((sum, c) => sum + childMs(c), 0);
  const others = children.filter((c) => childKind(c) !== 'qemu-img commit' && !isDaemon(c));
  const byKind: Record<string, { count: number; ms: number }> = {};
  const add = (kind: string, ms: number): void => {
    const entry = (byKind[kind] ??= { count: 0, ms: 0 });
    entry.count += 1;
    entry.ms += ms;
  };
  for (const child of children.filter((c) => !isDaemon(c))) add(childKind(child), childMs(child));
  // The daemon lives through the merge, mostly waiting: its work is the time its QMP commands took outside the commit
  // (commands sent together overlap: the union of their spans). By kind, a command counts from when the one before it
  // was answered (or it was sent, if later) to its own answer.
  const spans: [number, number][] = [];
  for (const child of children.filter(isDaemon)) {
    let previous = 0;
    for (const command of child.qmp ?? []) {
      if (command.repliedMs === undefined) continue;
      const from = Math.max(command.sentMs, previous);
      previous = command.repliedMs;
      if (inDaemon && command.sentMs >= inDaemon.fromMs && command.repliedMs <= inDaemon.toMs) continue;
      add(`qemu-storage-daemon: QMP ${command.execute}`, command.repliedMs - from);
      spans.push([command.sentMs, command.repliedMs]);
    }
  }
  let daemonMs = 0;
  let reached = -Infinity;
  for (const [from, to] of spans.sort((a, b) => a[0] - b[0])) {
    daemonMs += Math.max(0, to - Math.max(from, reached));
    reached = Math.max(reached, to);
  }
  const otherChildrenMs = others.reduce((sum, c) => sum + childMs(c), 0) + daemonMs;
  const untilFirstChildMs = children[0]?.startMs ?? merge.trace.exitMs;
  const outsideCommitMs = merge.wall.ms - commitMs;
  return {
    wallMs: merge.wall.ms,
    commitMs,
    outsideCommitMs,
    untilFirstChildMs,
    otherChildrenMs,
    nodeBetweenMs: outsideCommitMs - untilFirstChildMs - otherChildrenMs,
    processes: children.length,
    byKind,
  };
}

/** One merge as a timeline: each child's start and end, each QMP command sent to the daemon and answered (ms from node's start). */
export function timeline(merge: TracedMerge): { atMs: number; what: string }[] {
  const events: { atMs: number; what: string }[] = [];
  for (const child of merge.trace.children) {
    const kind = isDaemon(child) ? 'qemu-storage-daemon' : childKind(child);
    events.push({ atMs: child.startMs, what: `${kind} started` });
    if (child.endMs !== undefined) events.push({ atMs: child.endMs, what: `${kind} exited (${(child.endMs - child.startMs).toFixed(1)} ms)` });
    const commands = child.qmp ?? [];
    for (let i = 0; i < commands.length; ) {
      // Runs of the same command (32 bitmap removals sent at once) as one line.
      let j = i;
      while (j + 1 < commands.length && commands[j + 1]?.execute === commands[i]?.execute) j += 1;
      const first = commands[i] as NonNullable<TracedChild['qmp']>[number];
      const last = commands[j] as NonNullable<TracedChild['qmp']>[number];
      const count = j - i + 1;
      const took = last.repliedMs === undefined ? 'no reply' : `${(last.repliedMs - first.sentMs).toFixed(1)} ms`;
      events.push({ atMs: first.sentMs, what: `QMP ${first.execute}${count > 1 ? ` x${count}` : ''} (${took})` });
      i = j + 1;
    }
  }
  events.push({ atMs: merge.trace.exitMs, what: 'node exits' });
  return events.sort((a, b) => a.atMs - b.atMs).map((e) => ({ atMs: Math.round(e.atMs * 10) / 10, what: e.what }));
}
