// Start-up recovery on shared VGs: the VGs whose lockspace this host has started (lvmlockctl --info) are searched for
// job LVs, and recovery runs over the job store of each base they name. A job LV that another host holds is left to it;
// whatever recovery activated only to look (job LVs, a chain's base and top) is put back before any job is resumed.
import type { Journal } from '../engine/journal.js';
import { JOB_BASE_TAG_PREFIX, JOB_LV_TAG, SharedVgJobStore } from '../engine/shared-vg-store.js';
import { asVolmergeError } from '../errors.js';
import { log } from '../log.js';
import { listLvs, runLvm, type LvFacts } from '../storage/lvm.js';
import { activateExclusively, restoreActivation, type LocalActivation } from '../storage/shared-vg.js';
import { recoverJobs, type RecoveredJob, type RecoveryOptions } from './recovery.js';

/** The VGs that lvmlockctl --info names ("VG NAME lock_type=TYPE ..." lines): those whose lockspace lvmlockd runs here. */
export function startedVgsFromInfo(info: string): string[] {
  const vgs: string[] = [];
  for (const line of info.split('\n')) {
    const match = /^VG (\S+) lock_type=(sanlock|dlm)\b/.exec(line.trim());
    if (match?.[1] && !vgs.includes(match[1])) vgs.push(match[1]);
  }
  return vgs;
}

/** The shared VGs whose lockspace this host has started; none when lvmlockd is not running or not installed. */
export async function startedSharedVgs(): Promise<string[]> {
  let result;
  try {
    result = await runLvm(['lvmlockctl', '--info']);
  } catch (error) {
    log.debug(`recovery: no shared VG searched: ${(error as Error).message}`);
    return [];
  }
  if (result.exitCode !== 0) {
    log.debug(`recovery: no shared VG searched: lvmlockctl --info exited ${result.exitCode}: ${result.stderr.trim().split('\n')[0] ?? ''}`);
    return [];
  }
  return startedVgsFromInfo(result.stdout);
}

/** The base LVs that a VG's job LVs name (tag VOLMERGE_JOB_BASE_<base>), each once, sorted. */
export function jobBasesOf(lvs: readonly LvFacts[]): string[] {
  const bases = new Set<string>();
  for (const lv of lvs) {
    if (!lv.tags.includes(JOB_LV_TAG)) continue;
    for (const tag of lv.tags) if (tag.startsWith(JOB_BASE_TAG_PREFIX) && tag.length > JOB_BASE_TAG_PREFIX.length) bases.add(tag.slice(JOB_BASE_TAG_PREFIX.length));
  }
  return [...bases].sort();
}

interface Held {
  lv: string;
  before: LocalActivation;
}

async function putBack(vg: string, held: readonly Held[]): Promise<void> {
  for (const { lv, before } of [...held].reverse()) {
    await restoreActivation(vg, lv, before).catch((error: unknown) => log.warn(`recovery: ${vg}/${lv} could not be put back after the look: ${(error as Error).message}`));
  }
}

/**
 * Activates a journal's base and top (those in this VG) exclusively while recovery probes them; what puts them back
 * is returned. A volume LVM says is gone is not held (the probe then finds it gone); another host's lock rejects.
 */
export function holdChainForLook(vg: string): (journal: Journal) => Promise<() => Promise<void>> {
  return async (journal) => {
    const held: Held[] = [];
    try {
      for (const role of ['base', 'top'] as const) {
        const lv = journal.volumes[role].lv;
        if (lv?.vg !== vg || held.some((h) => h.lv === lv.name)) continue;
        try {
          held.push({ lv: lv.name, before: await activateExclusively(vg, lv.name, `${role} of job ${journal.jobId}`) });
        } catch (error) {
          const code = asVolmergeError(error).code;
          if (code !== 'lv-missing' && code !== 'vg-missing') throw error;
        }
      }
    } catch (error) {
      await putBack(vg, held);
      throw error;
    }
    return () => putBack(vg, held);
  };
}

/**
 * Recovers the jobs kept in the shared VGs this host has joined: for each base that a VG's job LVs name, recovery runs
 * over that base's job store (each retry opens its own). Resolves with the first pass's findings; a VG whose LVs
 * cannot be listed, or a base whose jobs cannot be read, is logged and skipped.
 */
export async function recoverSharedVgJobs(stateDir: string, options: RecoveryOptions): Promise<RecoveredJob[]> {
  const found: RecoveredJob[] = [];
  for (const vg of await startedSharedVgs()) {
    let bases: string[];
    try {
      bases = jobBasesOf(await listLvs(vg));
    } catch (error) {
      log.warn(`recovery: the job LVs of shared VG ${vg} cannot be listed (${(error as Error).message}); its jobs are not recovered now`);
      continue;
    }
    for (const base of bases) {
      log.info(`recovery: looking for unfinished jobs of ${vg}/${base} in its job LVs`);
      try {
        found.push(...(await recoverJobs(() => new SharedVgJobStore(vg, base, stateDir), { ...options, holdVolumes: holdChainForLook(vg) })));
      } catch (error) {
        log.warn(`recovery: the jobs of ${vg}/${base} could not be recovered now: ${(error as Error).message}`);
      }
    }
  }
  return found;
}
