// What /proc says: a process's start time, so that a recorded pid is not confused with a later process reusing it, and
// the id of this boot.
import { readFile } from 'node:fs/promises';

let cachedBootId: string | undefined;

/** This boot of this host (/proc/sys/kernel/random/boot_id): a new one after every reboot, never shared by two hosts. */
export async function bootId(): Promise<string> {
  cachedBootId ??= (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  return cachedBootId;
}

/** The start time of a process in clock ticks since boot (/proc/PID/stat field 22), or undefined when there is no such process. */
export async function processStartTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process that was pid when it started at startTicks still runs. */
export async function isProcessAlive(pid: number, startTicks: number | undefined): Promise<boolean> {
  const ticks = await processStartTicks(pid);
  if (ticks === undefined) return false;
  return startTicks === undefined || ticks === startTicks;
}
