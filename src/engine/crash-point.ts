// Test-only fault injection: VOLMERGE_CRASH_AT kills this process (and its process group) at a named point, and
// VOLMERGE_HOLD_AT holds it before a step until a file exists; inert unless set.
import { existsSync, readFileSync } from 'node:fs';
import { log } from '../log.js';

/**
 * Where to crash, as VOLMERGE_CRASH_AT says: "STEP:before" (after the journal says started, before acting),
 * "STEP:after" (after the journal says done), or "STEP:during[:PERCENT]" for commit and prune (once the commit's
 * progress, or the share of stale bitmaps removed, passes PERCENT, 30 by default); "drop:during[:PERCENT]" for the
 * prune's removal of top's inconsistent bitmaps (--drop-inconsistent); "carry:during": inside the commit's
 * qemu-storage-daemon session once top's bitmaps are carried into base in memory, before the daemon writes them.
 */
export interface CrashTarget {
  step: string;
  when: 'before' | 'after' | 'during';
  percent: number;
}

/** Parses VOLMERGE_CRASH_AT; undefined when unset or malformed (a malformed value never crashes anything). */
export function crashTarget(value = process.env.VOLMERGE_CRASH_AT): CrashTarget | undefined {
  if (!value) return undefined;
  const match = /^([a-z-]+):(before|after|during)(?::(\d{1,2}(?:\.\d+)?))?$/.exec(value.trim());
  if (!match || !match[1] || !match[2]) return undefined;
  return { step: match[1], when: match[2] as CrashTarget['when'], percent: match[3] ? Number(match[3]) : 30 };
}

/** This process's group id, from /proc/self/stat (field 5, after the parenthesised command name). */
function processGroup(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[2]);
  } catch {
    return undefined;
  }
}

/**
 * SIGKILLs this process's whole group (so qemu-img children die with it, as in a power cut) when this process leads
 * the group; otherwise only itself, so that a test runner sharing the group is never killed.
 */
export function killHard(): never {
  if (processGroup() === process.pid) process.kill(-process.pid, 'SIGKILL');
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not stop the process');
}

/** Kills the process when VOLMERGE_CRASH_AT names this step boundary. */
export function crashPoint(step: string, when: 'before' | 'after'): void {
  const target = crashTarget();
  if (target && target.step === step && target.when === when) killHard();
}

/** Kills the process when VOLMERGE_CRASH_AT is "STEP:during[:PERCENT]" and progress of that step has passed PERCENT. */
export function crashDuring(step: string, percent: number): void {
  const target = crashTarget();
  if (target && target.step === step && target.when === 'during' && percent >= target.percent) killHard();
}

/**
 * Sends this process a signal when VOLMERGE_SIGNAL_AT is "STEP:before|after:SIGNAL" and names this point, and resolves
 * once the process's own handlers have seen it (tests of Ctrl-C at an exact point). Inert unless set.
 */
export async function signalPoint(step: string, when: 'before' | 'after'): Promise<void> {
  const match = /^([a-z-]+):(before|after):(SIGINT|SIGTERM)$/.exec(process.env.VOLMERGE_SIGNAL_AT?.trim() ?? '');
  if (!match || match[1] !== step || match[2] !== when) return;
  const signal = match[3] as NodeJS.Signals;
  // Signal watchers do not keep Node's loop alive: a timer does, until the signal has been seen.
  const alive = setInterval(() => undefined, 1000);
  const delivered = new Promise((resolve) => process.once(signal, resolve));
  process.kill(process.pid, signal);
  await delivered;
  clearInterval(alive);
}

/**
 * Test-only: when VOLMERGE_HOLD_AT is "STEP:PATH", holds the run before STEP (before it looks at its abort signal)
 * until the file PATH exists, so that a test can act at that point (a live merge's job ready, the pivot not started);
 * a warning says that it holds.
 */
export async function holdPoint(step: string): Promise<void> {
  const value = process.env.VOLMERGE_HOLD_AT;
  if (!value) return;
  const match = /^([a-z-]+):(\/.+)$/.exec(value.trim());
  if (!match || match[1] !== step || !match[2]) return;
  const path = match[2];
  if (!existsSync(path)) log.warn(`test hold: before step ${step} until ${path} exists`);
  while (!existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 50));
}
