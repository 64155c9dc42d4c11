// One merge run as a job: the entry point that the CLI and the agent share. It takes the chain's lock (and, on a shared
// VG, the volumes' exclusive activation), keeps a write-ahead journal, backs up bitmaps, marks base, and finishes
// (resumes) a merge of the chain that an earlier run, on this host or another, left unfinished.
import { resolve as resolvePath } from 'node:path';
import { asVolmergeError, VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { inspectChain, type Inspection } from '../merge/inspect.js';
import { runFinalizeSteps } from '../merge/finalize.js';
import { mergeChain, planFor, runSteps, type CrashSafety, type MergeOutcome, type MergeRequest } from '../merge/pipeline.js';
import type { MergePlan } from '../merge/plan.js';
import { replanSizes } from '../merge/replan.js';
import { type MergeStep, type StepHooks } from '../merge/steps.js';
import { markHolderFor, readMark, setMark } from '../storage/marks.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { acquireChainLock } from './chain-lock.js';
import { deleteBitmapBackup } from './bitmap-backup.js';
import { jobSafety } from './job-safety.js';
import { HostJobStore, type JobStore } from './job-store.js';
import {
  assertJobId,
  firstUnfinishedStep,
  JournalWriter,
  needsRecovery,
  now,
  pastPointOfNoReturn,
  type Journal,
  type JournalVolume,
} from './journal.js';
import { repairBitmaps } from './repair.js';
import { refuseIfRetired, topRemovalStarted, topRetirement } from './top-retirement.js';
import { sharedChainOf, withSharedChain, type SharedChain } from './shared-chain.js';
import { findUnfinishedJob, resumePoint, takeOver, type UnfinishedJob } from './unfinished.js';
import { probeVolumes, volumeDeletedError } from './volume-probe.js';

/** A merge request plus where its job keeps state. */
export interface MergeJobRequest extends MergeRequest {
  /** Identifies the job (agent job id, or one made up by the CLI): letters, digits, '.', '_', '-'. */
  jobId: string;
  /** Folder for journals and bitmap backups (STATE_DIR/jobs/JOB_ID/); a chain on a shared VG keeps them in an LV of that VG instead. */
  stateDir: string;
  /**
   * The caller saw both volumes when it accepted the job (the agent, for a job that waited as pending): a volume
   * missing now ends the job with 'volume-deleted' instead of 'not-found'.
   */
  volumesValidated?: boolean;
}

const GONE_CODES = new Set(['not-found', 'lv-missing', 'vg-missing']);

/** Turns "not found" into "volume-deleted" for a job whose volumes were seen before. */
function missingMeansDeleted(error: unknown, request: MergeJobRequest): unknown {
  if (!request.volumesValidated || !(error instanceof VolmergeError) || !GONE_CODES.has(error.code)) return error;
  return new VolmergeError('volume-deleted', `${error.message}; job ${request.jobId} ended because a volume was removed while it waited; nothing was recreated or changed`);
}

/** The journal's record of a volume. */
function journalVolume(volume: Volume): JournalVolume {
  return {
    path: resolvePath(volume.path),
    realPath: volume.realPath,
    identity: volume.identity,
    kind: volume.kind,
    ...(volume.lv ? { lv: { vg: volume.lv.vg, name: volume.lv.name } } : {}),
  };
}

/** Step hooks that journal each step, then call the caller's own hooks. */
function journalHooks(writer: JournalWriter, own: StepHooks | undefined): StepHooks {
  return {
    started: async (step) => {
      await writer.started(step);
      await own?.started?.(step);
    },
    done: async (step, facts) => {
      await writer.done(step, facts);
      await own?.done?.(step, facts);
    },
    doneQuietly: async (step, facts) => {
      writer.doneQuietly(step, facts);
      await own?.done?.(step, facts);
    },
    isDone: (step) => writer.isDone(step),
    forget: async (step) => {
      await writer.update((j) => {
        delete j.steps[step];
      });
      await own?.forget?.(step);
    },
  };
}

/** The crash-safety actions of a journaled job: backup, base's mark, top's retirement. */
function safetyOf(writer: JournalWriter): CrashSafety {
  return { ...jobSafety(writer), ...topRetirement(writer) };
}

/** Records a failure in the journal (as volume-deleted when a volume is gone), keeps the journal only when the chain needs it. */
async function recordFailure(writer: JournalWriter, thrown: unknown): Promise<VolmergeError> {
  let error = asVolmergeError(thrown);
  const { journal } = writer;
  try {
    const probe = await probeVolumes(journal.volumes, { topMayBeGone: topRemovalStarted(journal) });
    if (probe.state === 'gone' && probe.role) error = volumeDeletedError(probe.role, journal.volumes[probe.role].path, probe.reason, journal.jobId);
    await writer.update((j) => {
      j.state = 'failed';
      j.error = { code: error.code, message: error.message };
      for (const record of Object.values(j.steps)) {
        if (record.status !== 'started') continue;
        record.status = 'failed';
        record.endedAt = now();
        record.error = { code: error.code, message: error.message };
      }
    });
    if (!needsRecovery(writer.journal)) await writer.store.remove(writer.folder);
    else log.info(`job ${journal.jobId}: journal kept in ${writer.store.locationOf(writer.folder)}; merging the chain again finishes it`);
  } catch (bookkeeping) {
    log.error(`job ${journal.jobId}: could not record the failure in its journal: ${(bookkeeping as Error).message}`);
  }
  return error;
}

/** How the steps are run: all of them over an inspection, or (top being removed) only the end of the merge. */
type StepRunner = (request: MergeRequest, safety: CrashSafety) => Promise<void>;

/** Runs the steps under the journal; on success the job's folder (journal and backup) is removed. */
async function execute(
  request: MergeJobRequest,
  writer: JournalWriter,
  runner: StepRunner,
  resumed?: MergeOutcome['resumed'],
): Promise<MergeOutcome> {
  try {
    await runner({ ...request, hooks: journalHooks(writer, request.hooks) }, safetyOf(writer));
  } catch (thrown) {
    throw await recordFailure(writer, thrown);
  }
  try {
    await writer.store.remove(writer.folder);
  } catch (error) {
    log.warn(`job ${writer.journal.jobId}: the merge is done but ${writer.store.locationOf(writer.folder)} could not be removed: ${(error as Error).message}`);
  }
  const used = writer.journal.steps.verify?.facts?.imageEndOffset;
  return { status: 'done', plan: writer.journal.plan, usedSize: typeof used === 'number' ? used : null, ...(resumed ? { resumed } : {}) };
}

/** Refuses a volume that carries a mid-merge mark this state folder cannot explain. */
async function refuseIfMarked(volume: Volume, role: 'top' | 'base', store: JobStore): Promise<void> {
  const { stateDir } = store;
  const mark = await readMark(markHolderFor(volume, stateDir));
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

/** Plans from what is there now and runs every step, in a new journal or in a taken-over one that had not reached the mark. */
async function runFresh(request: MergeJobRequest, store: JobStore, previous?: JournalWriter, resumed?: MergeOutcome['resumed']): Promise<MergeOutcome> {
  let planned: { inspection: Inspection; plan: MergePlan };
  try {
    planned = await planFor(request);
    await refuseIfMarked(planned.inspection.top, 'top', store);
    await refuseIfRetired(planned.inspection.top, 'top', store.stateDir);
    await refuseIfRetired(planned.inspection.base, 'base', store.stateDir);
  } catch (thrown) {
    if (previous) throw await recordFailure(previous, thrown);
    throw missingMeansDeleted(thrown, request);
  }
  const { inspection, plan } = planned;
  const volumes = { top: journalVolume(inspection.top), base: journalVolume(inspection.base) };
  const journalRequest = {
    top: resolvePath(request.top),
    base: resolvePath(request.base),
    leafRoom: request.leafRoom ?? 0,
    ...(request.dropBitmaps ? { dropBitmaps: true } : {}),
    ...(request.rateLimit ? { rateLimit: Math.ceil(request.rateLimit) } : {}),
  };
  let writer = previous;
  if (writer) {
    await writer.update((j) => {
      j.request = journalRequest;
      j.volumes = volumes;
      j.plan = plan;
    });
  } else {
    const created: Journal = {
      version: 1,
      jobId: request.jobId,
      state: 'running',
      createdAt: now(),
      updatedAt: now(),
      attempt: 1,
      pid: process.pid,
      request: journalRequest,
      volumes,
      plan,
      steps: {},
    };
    writer = new JournalWriter(store, created);
    await writer.update(() => undefined);
  }
  return execute(request, writer, (hooked, safety) => runSteps(hooked, inspection, plan, safety), resumed);
}

/**
 * Sizes base again from what is there now before a resumed run goes on: after a commit that ran out of space (or a
 * plan too small for another reason) the base LV is extended again, its extend step run once more, before the commit.
 */
async function resizeForResume(writer: JournalWriter, inspection: Inspection): Promise<void> {
  const { journal } = writer;
  const afterNoSpace = journal.steps.commit?.error?.code === 'no-space';
  const plan = await replanSizes(inspection, journal.plan, journal.request.leafRoom, afterNoSpace);
  if (plan.neededSize !== journal.plan.neededSize) log.info(`base ${inspection.base.path}: sized again for the resumed merge: ${journal.plan.neededSize} -> ${plan.neededSize} bytes`);
  await writer.update((j) => {
    j.plan = plan;
    if (plan.extendTo !== null && j.steps.commit?.status !== 'done') delete j.steps.extend;
  });
}

/** Finishes a merge that an earlier run (this job or another) left unfinished. */
async function resume(request: MergeJobRequest, store: JobStore, unfinished: UnfinishedJob, base: Volume): Promise<MergeOutcome> {
  const earlier = unfinished.journal;
  const fromStep: MergeStep | 'end' = firstUnfinishedStep(earlier) ?? 'end';
  const top = await resolveVolume(request.top, 'top').catch(() => undefined);
  if (top && top.identity !== earlier.volumes.top.identity) {
    throw new VolmergeError(
      'mid-merge',
      `base ${request.base} is mid-merge of top ${earlier.request.top} (job ${earlier.jobId}), not of ${request.top}; ` +
        `finish that first: volmerge merge --top ${earlier.request.top} --base ${request.base}`,
    );
  }
  const as = request.jobId === earlier.jobId ? '' : ` as job ${request.jobId}`;
  log.warn(`base ${request.base}: job ${earlier.jobId} left this merge unfinished at ${resumePoint(earlier)} (attempt ${earlier.attempt}); finishing it${as}`);
  const writer = await takeOver(store, unfinished, request.jobId);
  const dir = store.backupDir(writer.folder);
  const resumed = { jobId: earlier.jobId, fromStep };
  if (topRemovalStarted(writer.journal)) {
    // Every step before remove-top is done and top may be gone already: only the end of the merge is left, over base.
    const volumes = { top: writer.journal.volumes.top, base: journalVolume(base) };
    const plan = writer.journal.plan;
    request.onPlan?.(plan);
    return execute(request, writer, (hooked, safety) => runFinalizeSteps(hooked, volumes, plan, safety), resumed);
  }
  let inspection: Inspection;
  try {
    if (writer.journal.backup) await store.loadBackup(writer.folder);
    await repairBitmaps(writer.journal, dir, top?.realPath ?? writer.journal.volumes.top.path, base.realPath);
    if (!pastPointOfNoReturn(writer.journal)) {
      // Nothing of top is in base yet and the bitmaps are whole again: start over from a plan of what is there now.
      await writer.update((j) => {
        delete j.backup;
        j.steps = {};
      });
      await deleteBitmapBackup(dir);
      return await runFresh(request, store, writer, { jobId: earlier.jobId, fromStep });
    }
    inspection = await inspectChain(request.top, request.base);
    // Base keeps its mark under the new job's id, unless the earlier run had already taken it off (verify passed).
    if (writer.journal.jobId !== earlier.jobId && writer.journal.steps.unmark?.status !== 'done') {
      await setMark(markHolderFor(inspection.base, request.stateDir), writer.journal.jobId, request.stateDir);
    }
    if (writer.journal.steps.verify?.status !== 'done') await resizeForResume(writer, inspection);
  } catch (thrown) {
    if (thrown instanceof VolmergeError && writer.journal.state === 'failed') throw thrown;
    throw await recordFailure(writer, thrown);
  }
  const plan = writer.journal.plan;
  request.onPlan?.(plan);
  return execute(request, writer, (hooked, safety) => runSteps(hooked, inspection, plan, safety), resumed);
}

/** A dry run: the plan, or, for a chain with an unfinished merge, that merge's plan and where it would resume. */
async function dryRun(request: MergeJobRequest, store: JobStore): Promise<MergeOutcome> {
  let unfinished: UnfinishedJob | undefined;
  let base: Volume | undefined;
  try {
    base = await resolveVolume(request.base, 'base');
    unfinished = await findUnfinishedJob(store, base.identity);
  } catch (error) {
    if (error instanceof VolmergeError && error.code === 'locked-by-other-host') throw error;
    log.debug(`dry run: no unfinished job looked up: ${(error as Error).message}`);
  }
  if (!unfinished) {
    if (base) await refuseIfMarked(base, 'base', store);
    if (base) await refuseIfRetired(base, 'base', store.stateDir);
    const top = await resolveVolume(request.top, 'top').catch(() => undefined);
    if (top) await refuseIfRetired(top, 'top', store.stateDir);
    return mergeChain(request);
  }
  const { journal } = unfinished;
  request.onPlan?.(journal.plan);
  return { status: 'planned', plan: journal.plan, resumed: { jobId: journal.jobId, fromStep: firstUnfinishedStep(journal) ?? 'end' } };
}

/** Under the chain's lock: finishes the chain's unfinished merge, or runs a new one. */
async function mergeLocked(request: MergeJobRequest, store: JobStore, base: Volume): Promise<MergeOutcome> {
  const unfinished = await findUnfinishedJob(store, base.identity);
  if (unfinished) return resume(request, store, unfinished, base);
  await refuseIfMarked(base, 'base', store);
  return runFresh(request, store);
}

/** Resolves the job's base; a base missing now is 'volume-deleted' for a job whose volumes were validated earlier. */
async function resolveBase(request: MergeJobRequest): Promise<Volume> {
  try {
    return await resolveVolume(request.base, 'base');
  } catch (thrown) {
    throw missingMeansDeleted(thrown, request);
  }
}

/** A merge whose volumes are on this host (files, plain devices, LVs of a local VG): state in the host's state folder. */
async function runOnHost(request: MergeJobRequest): Promise<MergeOutcome> {
  const store = new HostJobStore(request.stateDir);
  if (request.dryRun) return dryRun(request, store);
  const base = await resolveBase(request);
  const lock = await acquireChainLock(base.identity, { jobId: request.jobId, base: request.base });
  try {
    return await mergeLocked(request, store, base);
  } finally {
    await lock.release();
  }
}

/**
 * A merge whose base is on a shared VG: under this host's chain lock, top and base are activated exclusively (refused
 * at once with 'locked-by-other-host' when another host holds one), the job's state lives in an LV of that VG, and
 * what was activated is put back at the end.
 */
async function runOnSharedVg(request: MergeJobRequest, chain: SharedChain): Promise<MergeOutcome> {
  // A dry run takes the lock too: it activates the volumes for a moment, which must not race a merge of this host.
  const lock = await acquireChainLock(chain.baseIdentity, { jobId: request.jobId, base: request.base });
  try {
    return await withSharedChain(chain, request.stateDir, async (store) => {
      if (request.dryRun) return dryRun(request, store);
      return mergeLocked(request, store, await resolveBase(request));
    });
  } finally {
    await lock.release();
  }
}

/**
 * Runs a merge as a job: refuses at once ('busy', naming the holder) when another merge holds the chain's lock, and
 * ('locked-by-other-host') when another host of a shared VG holds a volume; finishes an unfinished merge of the same
 * chain instead of starting over; journals every step where recovery will look for it.
 */
export async function runMergeJob(request: MergeJobRequest): Promise<MergeOutcome> {
  assertJobId(request.jobId);
  let chain: SharedChain | undefined;
  try {
    chain = await sharedChainOf(request.top, request.base, request.child);
  } catch (thrown) {
    throw missingMeansDeleted(thrown, request);
  }
  return chain ? runOnSharedVg(request, chain) : runOnHost(request);
}
