// Is a journaled volume still there, and still the same one? Only a query that succeeded may say "gone" (no such path,
// or another volume has it now); a failed query says "unknown".
import { stat } from 'node:fs/promises';
import { VolmergeError } from '../errors.js';
import { readLv } from '../storage/lvm.js';
import { compareVolumes } from '../storage/same-volume.js';
import { resolveVolume } from '../storage/volume.js';
import { formatLvIdentity } from '../storage/volume-identity.js';
import type { JournalVolume } from './journal.js';

/** What a probe found: the volume is there, it is gone (a successful query says so: no such path, or another volume has it), or its state is unknown (the query failed). */
export type ProbeResult = { state: 'present' } | { state: 'gone'; reason: string; replaced?: true } | { state: 'unknown'; reason: string };

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The volume now at a journaled LV's name: gone, another LV (made again), or present. */
async function probeLv(volume: JournalVolume & { lv: { vg: string; name: string } }, recordedAt: string | undefined): Promise<ProbeResult> {
  let lv;
  try {
    lv = await readLv(volume.lv.vg, volume.lv.name);
  } catch (error) {
    if (error instanceof VolmergeError && (error.code === 'lv-missing' || error.code === 'vg-missing')) return { state: 'gone', reason: error.message };
    return { state: 'unknown', reason: errorText(error) };
  }
  const current = { identity: formatLvIdentity(lv.vg, lv.name, lv.uuid), realPath: volume.realPath, ...(lv.createdAtMs !== undefined ? { lvCreatedAtMs: lv.createdAtMs } : {}) };
  const sameness = compareVolumes({ identity: volume.identity, realPath: volume.realPath, ...(recordedAt ? { recordedAt } : {}) }, current);
  if (sameness.verdict === 'other') return { state: 'gone', replaced: true, reason: `${volume.lv.vg}/${volume.lv.name} is another LV now (${sameness.reason})` };
  try {
    await stat(volume.path);
  } catch {
    return { state: 'unknown', reason: `${volume.lv.vg}/${volume.lv.name} exists but ${volume.path} is not there (inactive LV?)` };
  }
  return { state: 'present' };
}

/**
 * Probes a volume that a journal (or a mark) recorded: still there and still the same one? recordedAt (when the record
 * was made) lets a record of an earlier release tell a volume born since from the recorded one.
 */
export async function probeVolume(volume: JournalVolume, recordedAt?: string): Promise<ProbeResult> {
  if (volume.kind === 'lv' && volume.lv) return probeLv({ ...volume, lv: volume.lv }, recordedAt);
  try {
    await stat(volume.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'gone', reason: `${volume.path}: no such file or device` };
    return { state: 'unknown', reason: `${volume.path}: ${errorText(error)}` };
  }
  let current;
  try {
    current = await resolveVolume(volume.path, 'volume');
  } catch (error) {
    return { state: 'unknown', reason: `${volume.path}: ${errorText(error)}` };
  }
  const sameness = compareVolumes(
    { identity: volume.identity, realPath: volume.realPath, ...(recordedAt ? { recordedAt } : {}) },
    { identity: current.identity, realPath: current.realPath, ...(current.lv?.createdAtMs !== undefined ? { lvCreatedAtMs: current.lv.createdAtMs } : {}) },
  );
  if (sameness.verdict === 'other') {
    const what = volume.kind === 'file' ? 'file' : 'volume';
    return { state: 'gone', replaced: true, reason: `${volume.path} is another ${what} now (${sameness.reason})` };
  }
  return { state: 'present' };
}

/**
 * Probes top and base; 'gone' wins over 'unknown', which wins over 'present'. topMayBeGone (the job's remove-top step
 * has started): top is not probed, its absence is the job's own doing.
 */
export async function probeVolumes(
  volumes: { top: JournalVolume; base: JournalVolume },
  options: { topMayBeGone?: boolean; recordedAt?: string } = {},
): Promise<ProbeResult & { role?: 'top' | 'base' }> {
  const top = options.topMayBeGone ? ({ state: 'present' } as const) : await probeVolume(volumes.top, options.recordedAt);
  const results = { top, base: await probeVolume(volumes.base, options.recordedAt) };
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
