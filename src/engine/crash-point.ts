// Test-only fault injection: VOLMERGE_CRASH_AT kills this process (and its process group) at a named point; inert unless set.
import { readFileSync } from 'node:fs';

/**
 * Where to crash, as VOLMERGE_CRASH_AT says: "STEP:before" (after the journal says started, before acting),
 * "STEP:after" (after the journal says done), or "STEP:during[:PERCENT]" for commit and prune (once the commit's
 * progress, or the share of stale bitmaps removed, passes PERCENT, 30 by default); "carry:during": inside the commit's
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
