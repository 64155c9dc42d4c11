// Is a journaled volume still there? Only a query that succeeded may say "gone"; a failed query says "unknown".
import { stat } from 'node:fs/promises';
import { VolmergeError } from '../errors.js';
import { readLv } from '../storage/lvm.js';
import type { JournalVolume } from './journal.js';

/** What a probe found: the volume is there, it is gone (a successful query says so), or its state is unknown (the query failed). */
export type ProbeResult = { state: 'present' } | { state: 'gone'; reason: string } | { state: 'unknown'; reason: string };

/** Probes a volume that a journal recorded: still there and still the same one? */
export async function probeVolume(volume: JournalVolume): Promise<ProbeResult> {
  if (volume.kind === 'lv' && volume.lv) {
    try {
      await readLv(volume.lv.vg, volume.lv.name);
    } catch (error) {
      if (error instanceof VolmergeError && (error.code === 'lv-missing' || error.code === 'vg-missing')) return { state: 'gone', reason: error.message };
      return { state: 'unknown', reason: error instanceof Error ? error.message : String(error) };
    }
    try {
      await stat(volume.path);
    } catch {
      return { state: 'unknown', reason: `${volume.lv.vg}/${volume.lv.name} exists but ${volume.path} is not there (inactive LV?)` };
    }
    return { state: 'present' };
  }
  let facts;
  try {
    facts = await stat(volume.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'gone', reason: `${volume.path}: no such file or device` };
    return { state: 'unknown', reason: `${volume.path}: ${(error as Error).message}` };
  }
  if (volume.kind === 'file') {
    const identity = `file:${facts.dev}:${facts.ino}`;
    if (identity !== volume.identity) return { state: 'gone', reason: `${volume.path} was removed and another file now has its name` };
  }
  return { state: 'present' };
}

/**
 * Probes top and base; 'gone' wins over 'unknown', which wins over 'present'. topMayBeGone (the job's remove-top step
 * has started): top is not probed, its absence is the job's own doing.
 */
export async function probeVolumes(
  volumes: { top: JournalVolume; base: JournalVolume },
  options: { topMayBeGone?: boolean } = {},
): Promise<ProbeResult & { role?: 'top' | 'base' }> {
  const results = { top: options.topMayBeGone ? ({ state: 'present' } as const) : await probeVolume(volumes.top), base: await probeVolume(volumes.base) };
  for (const state of ['gone', 'unknown'] as const) {
    for (const role of ['base', 'top'] as const) {
      const result = results[role];
      if (result.state === state) return { ...result, role };
    }
  }
  return { state: 'present' };
}

/** The error that ends a job whose volume is gone: nothing was recreated or touched. */
export function volumeDeletedError(role: string, path: string, reason: string, jobId: string): VolmergeError {
  return new VolmergeError('volume-deleted', `${role} ${path} is gone (${reason}); job ${jobId} ended and nothing was recreated or changed`);
}
