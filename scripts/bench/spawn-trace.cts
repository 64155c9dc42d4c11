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
    if (result instanceof childProcess.ChildProcess) result.once('exit', ended);
    else ended();
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
