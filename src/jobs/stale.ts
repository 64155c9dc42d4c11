// Stale journals: a journal whose base is gone, or is another volume now (its inode reused, its loop device attached
// to another file, its LV made again), never acts: no merge takes it over, recovery does not resume it, and it blocks
// no merge of other volumes. `volmerge status` lists those that concern a base, with the command that clears them.
import { resolve as resolvePath } from 'node:path';
import { defaultStateDir } from '../config.js';
import type { Journal } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import { probeVolume, type ProbeResult } from '../engine/volume-probe.js';
import { currentVolumeOf } from '../storage/stale-mark.js';
import { compareVolumes, type Sameness } from '../storage/same-volume.js';
import type { Volume } from '../storage/volume.js';
import { liveKeyOf } from '../storage/volume-identity.js';

/** A stale journal, as status and the clearing command show it. */
export interface StaleJob {
  jobId: string;
  /** Where the journal is (a folder, or a job LV). */
  where: string;
  top: string;
  base: string;
  /** When the job began. */
  createdAt: string;
  /** Why it is stale: its base is gone, or another volume has its place. */
  reason: string;
  /** The command that clears it. */
  clear: string;
}

/** The command that clears a stale job's journal from this store. */
export function clearCommand(store: JobStore, jobId: string, basePath: string): string {
  const where = store.kind === 'shared-vg' ? ` --base ${basePath}` : store.stateDir !== defaultStateDir() ? ` --state-dir ${store.stateDir}` : '';
  return `volmerge clear-stale --job ${jobId}${where}`;
}

/** A stale job's view. */
export function staleJob(store: JobStore, key: string, journal: Journal, reason: string): StaleJob {
  return {
    jobId: journal.jobId,
    where: store.locationOf(key),
    top: journal.request.top,
    base: journal.request.base,
    createdAt: journal.createdAt,
    reason,
    clear: clearCommand(store, journal.jobId, journal.request.base),
  };
}

/** Whether a journal's base is the given volume, by identity (a journal of an earlier release by its time too). */
export function journalBaseSameness(journal: Journal, base: Volume): Sameness {
  const recorded = journal.volumes.base;
  return compareVolumes({ identity: recorded.identity, realPath: recorded.realPath, recordedAt: journal.createdAt }, currentVolumeOf(base));
}

/** Whether a journal named this base's path or has its live key (device and inode, device number, LV name): one an operator could take for it. */
export function concernsBase(journal: Journal, base: Volume): boolean {
  const recorded = journal.volumes.base;
  return liveKeyOf(recorded.identity) === liveKeyOf(base.identity) || recorded.realPath === base.realPath || recorded.path === resolvePath(base.path);
}

/** A journal's base looked at where the journal says it is: present (and the same volume), gone (or another volume has its place), or unknown. */
export function probeJournalBase(journal: Journal): Promise<ProbeResult> {
  return probeVolume(journal.volumes.base, journal.createdAt);
}

/** Why a probe makes a journal stale, for messages. */
export function staleText(journal: Journal, probe: ProbeResult & { state: 'gone' }): string {
  const path = journal.volumes.base.path;
  return `its base ${probe.reason.startsWith(path) ? '' : `${path}: `}${probe.reason}`;
}

/**
 * Why a journal is stale, looked at where it says its base is: undefined when its base is still there and the same
 * volume, or when that cannot be told (a failed query is never "gone").
 */
export async function staleReason(journal: Journal): Promise<string | undefined> {
  const probe = await probeJournalBase(journal);
  return probe.state === 'gone' ? staleText(journal, probe) : undefined;
}
