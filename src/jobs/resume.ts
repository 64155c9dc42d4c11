// Finishes a merge that an earlier run (this job or another, on this host or another) left unfinished: the journal is
// taken over, bitmaps our own interrupted step broke are rebuilt from the backup, then either the merge starts over
// from a new plan (the mark was never reached) or the same table runs on, skipping what the journal records as done.
import { deleteBitmapBackup } from '../engine/backup-images.js';
import type { JournalWriter } from '../engine/journal-writer.js';
import { pastPointOfNoReturn } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { inspectChain, type Inspection } from '../merge/inspect.js';
import { replanSizes } from '../merge/replan.js';
import { COLD_MERGE_SHAPE, topRemovalStarted } from '../steps/cold-merge.js';
import { repairBitmaps } from '../steps/repair.js';
import { markHolderFor, setMark } from '../storage/marks.js';
import { compareVolumes } from '../storage/same-volume.js';
import { currentVolumeOf } from '../storage/stale-mark.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { executeJob } from './execute-job.js';
import { recordFailure } from './failure.js';
import { journalVolume, runFresh } from './fresh-run.js';
import type { MergeJobRequest, MergeOutcome } from './job-request.js';
import { nextStep, resumePoint, takeOver, type UnfinishedJob } from './unfinished.js';

/**
 * Sizes base again from what is there now before a resumed run goes on: after a commit that ran out of space, or one
 * killed with clusters in flight (leaked: counted, but never reused), the base LV is extended again, its extend step
 * run once more, before anything writes base again; leaks found now are given back by the leaks step once more.
 */
async function resizeForResume(writer: JournalWriter, inspection: Inspection): Promise<void> {
  const { journal } = writer;
  const afterNoSpace = journal.steps.commit?.error?.code === 'no-space';
  const plan = await replanSizes(inspection, journal.plan, { leafRoom: journal.request.leafRoom, afterNoSpace, baseHoldsPartOfTop: journal.request.baseHoldsPartOfTop });
  if (plan.neededSize !== journal.plan.neededSize) log.info(`base ${inspection.base.path}: sized again for the resumed merge: ${journal.plan.neededSize} -> ${plan.neededSize} bytes`);
  await writer.update((j) => {
    j.plan = plan;
    if (plan.extendTo !== null) delete j.steps.extend;
    if (plan.leaks && (plan.leaks.base > 0 || plan.leaks.top > 0)) delete j.steps.leaks;
  });
}

/** Refuses a run whose top is not the top of the unfinished merge. */
export function assertSameTop(request: MergeJobRequest, earlier: UnfinishedJob['journal'], top: Volume | undefined): void {
  const recorded = { identity: earlier.volumes.top.identity, realPath: earlier.volumes.top.realPath, recordedAt: earlier.createdAt };
  if (top && compareVolumes(recorded, currentVolumeOf(top)).verdict === 'other') {
    throw new VolmergeError(
      'mid-merge',
      `base ${request.base} is mid-merge of top ${earlier.request.top} (job ${earlier.jobId}), not of ${request.top}; ` +
        `finish that first: volmerge merge --top ${earlier.request.top} --base ${request.base}`,
    );
  }
}

/** Finishes the unfinished merge of the chain whose base is given. */
export async function resume(request: MergeJobRequest, store: JobStore, unfinished: UnfinishedJob, base: Volume): Promise<MergeOutcome> {
  const earlier = unfinished.journal;
  const top = await resolveVolume(request.top, 'top').catch(() => undefined);
  assertSameTop(request, earlier, top);
  const as = request.jobId === earlier.jobId ? '' : ` as job ${request.jobId}`;
  log.warn(`base ${request.base}: job ${earlier.jobId} left this merge unfinished at ${resumePoint(earlier)} (attempt ${earlier.attempt}); finishing it${as}`);
  const writer = await takeOver(store, unfinished, request.jobId);
  const resumed = { jobId: earlier.jobId, fromStep: nextStep(earlier) };
  if (topRemovalStarted(writer.journal)) {
    // Every step before remove-top is done and top may be gone already: only the end of the merge is left, over base.
    request.onPlan?.(writer.journal.plan);
    return executeJob(request, writer, { volumes: { top: writer.journal.volumes.top, base: journalVolume(base) } }, resumed);
  }
  let inspection: Inspection;
  try {
    const dir = store.backupDir(writer.key);
    if (writer.journal.backup) await store.loadBackup(writer.key);
    await repairBitmaps(writer.journal, dir, top?.realPath ?? writer.journal.volumes.top.path, base.realPath);
    if (!pastPointOfNoReturn(writer.journal, COLD_MERGE_SHAPE)) {
      // Nothing of top is in base yet and the bitmaps are whole again: start over from a plan of what is there now.
      await writer.update((j) => {
        delete j.backup;
        j.steps = {};
      });
      await deleteBitmapBackup(dir);
      // A merge that began as the cold end of a vm-gone live job keeps sizing base for what that job's commit left.
      const again = earlier.request.baseHoldsPartOfTop ? { ...request, baseHoldsPartOfTop: true } : request;
      return await runFresh(again, store, undefined, writer, resumed);
    }
    inspection = await inspectChain(request.top, request.base);
    // Base keeps its mark under the new job's id, unless the earlier run had already taken it off (verify passed).
    if (writer.journal.jobId !== earlier.jobId && writer.journal.steps.unmark?.status !== 'done') {
      await setMark(markHolderFor(inspection.base, request.stateDir), writer.journal.jobId, request.stateDir, inspection.base.identity);
    }
    if (writer.journal.steps.verify?.status !== 'done') await resizeForResume(writer, inspection);
  } catch (thrown) {
    if (thrown instanceof VolmergeError && writer.journal.state === 'failed') throw thrown;
    throw await recordFailure(writer, thrown);
  }
  request.onPlan?.(writer.journal.plan);
  return executeJob(request, writer, { inspection, volumes: { top: inspection.top, base: inspection.base } }, resumed);
}
