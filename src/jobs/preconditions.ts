// What must hold before a merge of a chain starts (or is planned): no volume carries a mark that the job store cannot
// explain, and neither volume was retired by an earlier merge. Checked the same way for dry and real runs.
import type { JobStore } from '../engine/store.js';
import { VolmergeError } from '../errors.js';
import { writeLockedByOther } from '../os/file-locks.js';
import { BUSY_HINT } from '../qemu/qemu-img.js';
import { log } from '../log.js';
import { markHolderFor, readMark, type MarkHolder, type MidMergeMark } from '../storage/marks.js';
import { currentVolumeOf, staleMarkReason, type MarkedVolumeRecord } from '../storage/stale-mark.js';
import type { Volume } from '../storage/volume.js';

/** The marked job's record of its base, from its journal when the store still has one (marks of earlier releases name no identity). */
export async function markedRecord(store: JobStore, jobId: string, role: 'top' | 'base'): Promise<MarkedVolumeRecord | undefined> {
  const entry = await store.read(store.keyFor(jobId)).catch(() => undefined);
  if (!entry || !('journal' in entry)) return undefined;
  return { identity: entry.journal.volumes[role].identity, recordedAt: entry.journal.createdAt };
}

/** A mark that still marks this volume; one left by a volume that is gone is logged and passed over (undefined). */
export async function liveMark(volume: Volume, role: 'top' | 'base', holder: MarkHolder, store: JobStore, markedRole: 'top' | 'base' = role): Promise<MidMergeMark | undefined> {
  const mark = await readMark(holder);
  if (!mark) return undefined;
  const stale = staleMarkReason(mark, holder, currentVolumeOf(volume), await markedRecord(store, mark.jobId, markedRole));
  if (stale === undefined) return mark;
  log.warn(`${role} ${volume.path}: the mark of job ${mark.jobId} (${mark.where}) is stale (${stale}); it is passed over, and a merge's own mark replaces it`);
  return undefined;
}

/** Refuses a volume that carries a mid-merge mark this store cannot explain. */
export async function refuseIfMarked(volume: Volume, role: 'top' | 'base', store: JobStore): Promise<void> {
  const { stateDir } = store;
  // A mid-merge mark is set on the marking job's base, whatever this volume is to this merge.
  const mark = await liveMark(volume, role, markHolderFor(volume, stateDir), store, 'base');
  if (!mark) return;
  if (role === 'top') {
    throw new VolmergeError('mid-merge', `top ${volume.path} is itself mid-merge into its own base (job ${mark.jobId}, ${mark.where}); finish that merge first`);
  }
  const elsewhere = mark.stateDir && mark.stateDir !== stateDir ? `; its journal may be in ${mark.stateDir} (set VOLMERGE_STATE_DIR or --state-dir to it)` : '';
  throw new VolmergeError(
    'needs-attention',
    `base ${volume.path} is marked mid-merge by job ${mark.jobId} (${mark.where}) but ${store.describe()} holds no unfinished journal of it${elsewhere}; ` +
      'it may hold part of a merge: see "Crash safety" in the README before using it',
  );
}

/** Refuses a merge of a volume that an earlier merge retired: merging it again would write stale data into base. */
export async function refuseIfRetired(volume: Volume, role: 'top' | 'base', store: JobStore): Promise<void> {
  // A retired mark is set on the job's top.
  const mark = await liveMark(volume, role, markHolderFor(volume, store.stateDir, 'retired'), store, 'top');
  if (!mark) return;
  const remove = volume.lv ? `lvremove ${volume.lv.vg}/${volume.lv.name}` : `rm ${volume.path}`;
  throw new VolmergeError(
    'volume-retired',
    `${role} ${volume.path} was merged into its base and retired by job ${mark.jobId} (${mark.where}): nothing may use it any more; ` +
      `once you are sure nothing does, remove it (${remove})`,
  );
}

/**
 * The checks of a new merge (no unfinished job of the chain was found): base carries no unexplained mark, top is not
 * itself mid-merge, neither is retired. Volumes not given (not resolvable yet) are left to the planning's own errors.
 */
export async function checkPreconditions(volumes: { top?: Volume | undefined; base?: Volume | undefined }, store: JobStore): Promise<void> {
  if (volumes.base) {
    await refuseIfMarked(volumes.base, 'base', store);
    await refuseIfRetired(volumes.base, 'base', store);
  }
  if (volumes.top) {
    await refuseIfMarked(volumes.top, 'top', store);
    await refuseIfRetired(volumes.top, 'top', store);
  }
}

/**
 * Refuses a cold merge of a chain that another process holds open and keeps from being written (a running VM holds every
 * volume of its chain so, inner ones included): checked before anything is journaled, so the refusal leaves no job behind.
 * The child (the volume above top that the merge would rebase) is looked at first: a VM that runs it names it.
 */
export async function refuseIfHeldOpen(volumes: { top: Volume; base: Volume }, child?: string): Promise<void> {
  const held: [string, string, string][] = [
    ...(child ? [['child', child, child] as [string, string, string]] : []),
    ['top', volumes.top.path, volumes.top.realPath],
    ['base', volumes.base.path, volumes.base.realPath],
  ];
  for (const [role, path, realPath] of held) {
    if (await writeLockedByOther(realPath)) {
      throw new VolmergeError('busy', `${role} ${path}: another process holds it open and lets nobody write it${BUSY_HINT}`);
    }
  }
}
