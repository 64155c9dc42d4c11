// After a crash: rebuilds the bitmaps that our own interrupted step left in-use (or half-rebuilt), from the job's backup.
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { removeBitmap } from '../qemu/mutations.js';
import { readChain } from '../qemu/queries.js';
import { bitmapsOf, isInUse, type ImageInfo } from '../qemu/types.js';
import { rebuildBitmap } from '../engine/backup-images.js';
import { interruptedSteps, type BackupImage, type Journal } from '../engine/journal.js';
import { assertNoInUseBitmaps } from '../merge/verify.js';
import { COLD_MERGE_SHAPE } from './cold-merge.js';

/** What the repair did, for the journal and the log. */
export interface RepairFacts {
  /** Steps whose interruption could have broken bitmaps. */
  interrupted: string[];
  rebuiltInTop: string[];
  rebuiltInBase: string[];
  /** Broken base bitmaps that no backup holds (stale ones, or ones the bitmaps step creates again): removed. */
  removedFromBase: string[];
}

interface Target {
  role: 'top' | 'base';
  path: string;
  info: ImageInfo;
  backup: BackupImage;
}

/** The bitmaps of a volume to rebuild: backed-up ones that are in-use or missing. */
function toRebuild(target: Target): string[] {
  const present = new Map(bitmapsOf(target.info).map((b) => [b.name, b]));
  return target.backup.bitmaps.filter((b) => {
    const now = present.get(b.name);
    return !now || isInUse(now);
  }).map((b) => b.name);
}

/**
 * Rebuilds bitmaps that the journal shows our own interrupted step may have broken: base's after prune, commit, leaks
 * or bitmaps; top's after commit or leaks, or after a prune that drops inconsistent bitmaps. The in-use bitmaps the job
 * was asked to drop (--drop-inconsistent) are left to its drop step. Any other in-use bitmap is not ours to touch and
 * refuses the resume.
 */
export async function repairBitmaps(journal: Journal, jobDir: string, top: string, base: string): Promise<RepairFacts> {
  const interrupted = interruptedSteps(journal, COLD_MERGE_SHAPE).filter((s) => COLD_MERGE_SHAPE.bitmapWriting.includes(s));
  const facts: RepairFacts = { interrupted, rebuiltInTop: [], rebuiltInBase: [], removedFromBase: [] };
  const dropping = journal.plan.bitmaps.inconsistent ?? [];
  const [topInfo, baseInfo] = await readChain(top);
  if (!topInfo || !baseInfo) throw new VolmergeError('bad-chain', `top ${top}: its backing chain to ${base} is gone; job ${journal.jobId} needs attention`);
  if (interrupted.length === 0) {
    const notOurs = `job ${journal.jobId}'s last run (no step of ours was interrupted, so these are not ours to rebuild)`;
    assertNoInUseBitmaps(topInfo, 'top', top, notOurs, dropping);
    assertNoInUseBitmaps(baseInfo, 'base', base, notOurs, dropping);
    return facts;
  }
  if (!journal.backup) {
    throw new VolmergeError('needs-attention', `job ${journal.jobId}: step ${interrupted.join(', ')} was interrupted but the journal has no bitmap backup; check the bitmaps of ${top} and ${base} by hand`);
  }
  // The prune writes top too when it drops inconsistent bitmaps.
  const topBroken = interrupted.includes('commit') || interrupted.includes('leaks') || (interrupted.includes('prune') && dropping.length > 0);
  if (!topBroken) assertNoInUseBitmaps(topInfo, 'top', top, `job ${journal.jobId}'s ${interrupted.join(', ')} (which does not write to top)`, dropping);
  else {
    const target: Target = { role: 'top', path: top, info: topInfo, backup: journal.backup.top };
    const unknown = bitmapsOf(topInfo)
      .filter((b) => isInUse(b) && !dropping.includes(b.name) && !target.backup.bitmaps.some((k) => k.name === b.name))
      .map((b) => b.name);
    if (unknown.length > 0) {
      throw new VolmergeError('bitmap-in-use', `top ${top}: bitmap ${unknown.join(', ')} is in-use and was not in top when job ${journal.jobId} began; remove it by hand (qemu-img bitmap --remove)`);
    }
    for (const name of toRebuild(target)) {
      log.info(`job ${journal.jobId}: rebuilding bitmap ${name} of top ${top} from the backup`);
      await rebuildBitmap(top, jobDir, target.backup, name);
      facts.rebuiltInTop.push(name);
    }
  }
  const baseTarget: Target = { role: 'base', path: base, info: baseInfo, backup: journal.backup.base };
  for (const name of toRebuild(baseTarget)) {
    log.info(`job ${journal.jobId}: rebuilding bitmap ${name} of base ${base} from the backup`);
    await rebuildBitmap(base, jobDir, baseTarget.backup, name);
    facts.rebuiltInBase.push(name);
  }
  const backedUp = new Set(baseTarget.backup.bitmaps.map((b) => b.name));
  for (const bitmap of bitmapsOf(baseInfo).filter((b) => isInUse(b) && !backedUp.has(b.name))) {
    log.info(`job ${journal.jobId}: removing broken bitmap ${bitmap.name} of base ${base} (pruned or created again by the merge)`);
    await removeBitmap(base, bitmap.name);
    facts.removedFromBase.push(bitmap.name);
  }
  const [topAfter, baseAfter] = await readChain(top);
  if (topAfter) assertNoInUseBitmaps(topAfter, 'top', top, 'rebuilding bitmaps from the backup', dropping);
  if (baseAfter) assertNoInUseBitmaps(baseAfter, 'base', base, 'rebuilding bitmaps from the backup', dropping);
  return facts;
}
