// Preload for `node --require`: records every child process the traced program starts (argv, start, end) and writes
// them as JSON to $VOLMERGE_BENCH_TRACE when the program exits. It changes nothing else; the benchmark counts with it.
// CommonJS, so that tracing does not start node's ES module loader, which the CLI itself does not need.
import childProcess from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';

/** One child process as the trace records it; times are performance.now() of the traced process (ms since it started). */
export interface TracedChild {
  argv: string[];
  startMs: number;
  endMs?: number;
  /** For a QMP peer on stdin/stdout (qemu-storage-daemon): each command as sent and when its reply came. */
  qmp?: { execute: string; sentMs: number; repliedMs?: number }[];
}

/** Records the QMP commands written to a child's stdin and the times of their replies on its stdout (matched by id). */
function traceQmp(child: import('node:child_process').ChildProcess, record: TracedChild): void {
  const commands: NonNullable<TracedChild['qmp']> = [];
  const byId = new Map<string, (typeof commands)[number]>();
  record.qmp = commands;
  const stdin = child.stdin;
  if (!stdin || !child.stdout) return;
  const write = stdin.write.bind(stdin) as (...args: unknown[]) => boolean;
  (stdin as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]): boolean => {
    for (const line of String(args[0]).split('\n').filter(Boolean)) {
      try {
        const message = JSON.parse(line) as { execute?: string; id?: string };
        const entry = { execute: message.execute ?? '?', sentMs: performance.now() };
        commands.push(entry);
        if (message.id !== undefined) byId.set(String(message.id), entry);
      } catch {
        // not a QMP line
      }
    }
    return write(...args);
  };
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer | string) => {
    buffer += chunk.toString();
    for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      // A reply's own id is its last "id" key (a query-jobs reply holds the jobs' ids before it).
      const id = [...line.matchAll(/"id": *"([^"]*)"/g)].at(-1)?.[1];
      const entry = id === undefined ? undefined : byId.get(id);
      if (entry) entry.repliedMs = performance.now();
    }
  });
}

/** What the trace file holds. */
export interface SpawnTrace {
  children: TracedChild[];
  exitMs: number;
}

const children: TracedChild[] = [];
const output = process.env.VOLMERGE_BENCH_TRACE;
/** For a long-lived program (the agent): each child is appended to this file as one JSON line when it exits. */
const lines = process.env.VOLMERGE_BENCH_TRACE_LINES;

type Starter = (...args: unknown[]) => unknown;

/** Wraps one child_process function so that every call is recorded; waits for 'exit' on the ChildProcess it returns. */
function wrap(name: 'spawn' | 'execFile' | 'exec' | 'fork' | 'spawnSync' | 'execFileSync' | 'execSync'): void {
  const original = childProcess[name] as unknown as Starter;
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    const file = typeof args[0] === 'string' ? args[0] : '?';
    const rest = Array.isArray(args[1]) ? args[1].map(String) : [];
    const record: TracedChild = { argv: [file, ...rest], startMs: performance.now() };
    children.push(record);
    const result = original.apply(this, args);
    const ended = (): void => {
      record.endMs = performance.now();
      if (lines) appendFileSync(lines, `${JSON.stringify(record)}\n`);
    };
    if (result instanceof childProcess.ChildProcess) {
      if (record.argv.some((arg) => arg.includes('qemu-storage-daemon'))) traceQmp(result, record);
      result.once('exit', ended);
    } else ended();
    return result;
  };
  (childProcess as unknown as Record<string, Starter>)[name] = wrapped;
}

if (output || lines) {
  for (const name of ['spawn', 'execFile', 'exec', 'fork', 'spawnSync', 'execFileSync', 'execSync'] as const) wrap(name);
  process.once('exit', () => {
    const trace: SpawnTrace = { children, exitMs: performance.now() };
    if (output) writeFileSync(output, JSON.stringify(trace));
  });
}
