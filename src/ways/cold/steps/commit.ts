// Step commit: top's data into base (top is kept and still reads the same). In the run's qemu-storage-daemon: base
// read-write, top read-only over it, one block-commit; top's bitmaps are then carried into base in the same session
// (the bitmaps step has nothing left), the daemon quits (closing base writes them), and both bitmap directories are
// read from disk: none may be in-use. Without the daemon: top's bitmaps are backed up (qemu-img commit opens top
// read-write), qemu-img commit runs, and a re-read of the chain proves no bitmap was lost behind its exit code.
import { crashDuring } from '../../../engine/crash-point.js';
import type { Step } from '../../../engine/step.js';
import { explainCommitFailure } from '../../../merge/no-space.js';
import { rereadChain } from '../../../merge/reread.js';
import { assertNoInUseBitmaps } from '../../../merge/verify.js';
import { carryBitmapsInDaemon, endSession } from '../../../qemu/daemon-bitmaps.js';
import { commitInDaemon } from '../../../qemu/daemon-commit.js';
import { closeChain, openChain } from '../../../qemu/daemon-images.js';
import { commit, type BitmapCopy } from '../../../qemu/mutations.js';
import { readDiskBitmaps } from '../../../qemu/qcow2-bitmaps.js';
import type { StorageDaemon } from '../../../qemu/qmp.js';
import { daemonOf, forgetDaemon, inspected, type MergeContext } from './context.js';
import { backUpTop } from './top-backup.js';

/** What the bitmaps step does to each kept bitmap, given the names base has now. */
export function bitmapCopies(context: MergeContext, present: ReadonlySet<string>): BitmapCopy[] {
  const { bitmaps } = context.plan;
  const adds = new Map(bitmaps.add.map((b) => [b.name, b.granularity]));
  return bitmaps.merge.map((name) => {
    const granularity = adds.get(name);
    return { name, ...(granularity !== undefined && !present.has(name) ? { addWithGranularity: granularity } : {}), enable: bitmaps.enable.includes(name) };
  });
}

/** Progress of the commit, also where crash tests kill it. */
function progressOf(context: MergeContext): (percent: number) => void {
  return (percent) => {
    crashDuring('commit', percent);
    context.onProgress?.(percent);
  };
}

/** The commit and the carrying of top's bitmaps in one daemon session, ended and checked on disk. */
async function commitWithDaemon(daemon: StorageDaemon, context: MergeContext): Promise<Record<string, unknown>> {
  const { top, base } = inspected(context);
  const { rateLimit } = context.request;
  // What base holds before the session (base is closed between steps): a bitmap already there is merged into, not added.
  const present = new Set((await readDiskBitmaps(base.realPath, 'base')).map((b) => b.name));
  forgetDaemon(context);
  let failed = true;
  try {
    const chain = { top: top.realPath, topDriver: top.driver, base: base.realPath, baseDriver: base.driver };
    await commitInDaemon(daemon, chain, {
      onProgress: progressOf(context),
      ...(context.signal ? { signal: context.signal } : {}),
      ...(rateLimit ? { rateLimit } : {}),
    }).catch((error: unknown) => {
      throw explainCommitFailure(error, base, context.plan);
    });
    const copies = bitmapCopies(context, present);
    if (copies.length > 0) {
      // Closed and opened again before the bitmaps are written, as qemu-img's commit and bitmap runs do: a new open
      // allocates from base's first free cluster, so the bitmaps fill the holes the prune left instead of going past
      // the commit's last cluster (a session that stays open ended up to 3 clusters beyond the planned size).
      await closeChain(daemon, chain);
      await openChain(daemon, chain);
      await carryBitmapsInDaemon(daemon, base.realPath, copies);
      // A kill inside the combined session, bitmaps carried in memory and not yet written: the journal says commit started.
      crashDuring('carry', 100);
      context.bitmapsCarried = true;
    }
    failed = false;
  } finally {
    // After a failure the daemon still closes what it holds; the failure itself is what is reported.
    if (failed) await daemon.quit();
  }
  await endSession(daemon, base.path, 'the commit');
  const [baseAfter, topAfter] = await Promise.all([readDiskBitmaps(base.realPath, 'base'), readDiskBitmaps(top.realPath, 'top')]);
  assertNoInUseBitmaps(baseAfter, 'base', base.path, 'the commit');
  assertNoInUseBitmaps(topAfter, 'top', top.path, 'the commit');
  return { daemon: true, ...(context.bitmapsCarried ? { carried: context.plan.bitmaps.merge } : {}) };
}

/** The commit by qemu-img, and the re-read that the bitmaps step reuses. */
async function commitWithQemuImg(context: MergeContext): Promise<Record<string, unknown>> {
  const inspection = inspected(context);
  const { top, base } = inspection;
  const { rateLimit } = context.request;
  await backUpTop(context);
  await commit(top.realPath, base.realPath, {
    onProgress: progressOf(context),
    ...(context.signal ? { signal: context.signal } : {}),
    ...(rateLimit ? { rateLimit } : {}),
  }).catch((error: unknown) => {
    throw explainCommitFailure(error, base, context.plan);
  });
  context.baseAfterCommit = (await rereadChain(inspection, 'the commit')).base;
  return {};
}

/** The commit step. */
export const commitStep: Step<MergeContext> = {
  name: 'commit',
  writesBitmaps: true,
  journaling: () => 'durable',
  async run(context) {
    // A raw base is committed by qemu-img (the daemon's session opens qcow2 volumes only).
    const daemon = context.plan.baseFormat === 'raw' ? undefined : await daemonOf(context);
    return daemon ? commitWithDaemon(daemon, context) : commitWithQemuImg(context);
  },
};
