// The entry point of a merge that the CLI, the agent and start-up recovery share: the chain is held (withChain), an
// unfinished merge of it is finished instead of starting over, and a new one is checked, planned and run.
import type { JobStore } from '../engine/store.js';
import { assertJobId } from '../engine/journal.js';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { resolveChainVolumes } from '../merge/inspect.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { resolveJobBase, withChain } from './chain.js';
import { missingMeansDeleted } from './failure.js';
import { abortOutsideTable } from './interrupted.js';
import { planAnnounced, runFresh } from './fresh-run.js';
import type { MergeJobRequest, MergeOutcome } from './job-request.js';
import { closeOrphanedLibvirtJob, libvirtCommand } from './libvirt-orphan.js';
import { planLibvirtDry, runLibvirtFresh } from './libvirt-plan.js';
import { resumeLibvirt } from './libvirt-run.js';
import { closeOrphanedLiveJob } from './live-orphan.js';
import { planLiveDry, runLiveFresh } from './live-plan.js';
import { resumeLive } from './live-run.js';
import { checkPreconditions, refuseIfHeldOpen } from './preconditions.js';
import { resume } from './resume.js';
import { clearCommand, staleReason } from './stale.js';
import { findUnfinishedJob, nextStep, type UnfinishedJob } from './unfinished.js';

/** Top and base resolved for a new merge (refusing two paths to one volume); failures as the planning reports them. */
async function resolveBoth(request: MergeJobRequest): Promise<{ top: Volume; base: Volume }> {
  try {
    return await resolveChainVolumes(request.top, request.base);
  } catch (thrown) {
    throw missingMeansDeleted(thrown, request);
  }
}

/** A dry run: the plan, or, for a chain with an unfinished merge, that merge's plan and where it would resume. */
async function dryRun(request: MergeJobRequest, store: JobStore): Promise<MergeOutcome> {
  let unfinished: UnfinishedJob | undefined;
  try {
    unfinished = await findUnfinishedJob(store, await resolveVolume(request.base, 'base'));
  } catch (error) {
    if (error instanceof VolmergeError && error.code === 'locked-by-other-host') throw error;
    log.debug(`dry run: no unfinished job looked up: ${(error as Error).message}`);
  }
  if (unfinished) {
    const { journal } = unfinished;
    request.onPlan?.(journal.plan);
    return { status: 'planned', plan: journal.plan, resumed: { jobId: journal.jobId, fromStep: nextStep(journal) } };
  }
  const volumes = await resolveBoth(request);
  await checkPreconditions(volumes, store);
  if (request.domain) return planLibvirtDry(request);
  if (request.qmp) return planLiveDry(request);
  await refuseIfHeldOpen(volumes, request.child);
  return { status: 'planned', plan: (await planAnnounced(request, volumes)).plan };
}

/**
 * Refuses a run whose job id names a journal that is not of this chain (the agent finishing a job found at start-up,
 * whose base is another volume now): a new merge under that id would take the place of the stale journal.
 */
async function refuseOwnJournalElsewhere(request: MergeJobRequest, store: JobStore): Promise<void> {
  const own = await store.read(store.keyFor(request.jobId)).catch(() => undefined);
  if (!own || !('journal' in own)) return;
  const reason = (await staleReason(own.journal)) ?? `it is not a journal of base ${request.base} as it is now`;
  throw new VolmergeError(
    'volume-deleted',
    `job ${request.jobId} (${own.where}) was not resumed: ${reason}; nothing was changed; clear it: ${clearCommand(store, request.jobId, request.base)}`,
  );
}

/** Under the chain's lock: finishes the chain's unfinished merge, or checks and runs a new one; an abort says where it left the chain. */
async function mergeLocked(request: MergeJobRequest, store: JobStore, lockedBase: Volume | undefined): Promise<MergeOutcome> {
  const base = lockedBase ?? (await resolveJobBase(request));
  try {
    return await mergeBase(request, store, base);
  } catch (thrown) {
    throw request.signal?.aborted ? await abortOutsideTable(thrown, request.signal, store, base) : thrown;
  }
}

/** Finishes the unfinished merge of base's chain, or checks and runs a new one. */
async function mergeBase(request: MergeJobRequest, store: JobStore, base: Volume): Promise<MergeOutcome> {
  const unfinished = await findUnfinishedJob(store, base);
  if (!unfinished) await refuseOwnJournalElsewhere(request, store);
  let job = request;
  if (unfinished && unfinished.journal.kind !== 'libvirt' && request.domain) {
    throw new VolmergeError(
      'mid-merge',
      `base ${request.base}: a ${unfinished.journal.kind ?? 'cold'} merge of ${unfinished.journal.request.top} (job ${unfinished.journal.jobId}) is unfinished; finish it the way it began ` +
        `(volmerge merge --top ${unfinished.journal.request.top} --base ${request.base}${unfinished.journal.request.qmp ? ` --qmp ${unfinished.journal.request.qmp}` : ''})`,
    );
  }
  if (unfinished?.journal.kind === 'libvirt') {
    if (request.domain) return resumeLibvirt(request, store, unfinished, base);
    if (request.qmp) throw new VolmergeError('mid-merge', `base ${request.base}: a live merge through libvirt (job ${unfinished.journal.jobId}) is unfinished; finish it: ${libvirtCommand(unfinished.journal)}`);
    // Refused while the domain runs; closed (vm-gone) when it is gone, and this cold merge finishes the chain.
    if (await closeOrphanedLibvirtJob(request, store, unfinished)) job = { ...request, baseHoldsPartOfTop: true };
  } else if (unfinished?.journal.kind === 'live') {
    if (request.qmp) return resumeLive(request, store, unfinished, base);
    // Refused while the VM answers; closed (vm-gone) when it is gone, and this cold merge finishes the chain.
    if (await closeOrphanedLiveJob(request, store, unfinished)) job = { ...request, baseHoldsPartOfTop: true };
  } else if (unfinished) {
    if (request.qmp) {
      throw new VolmergeError(
        'mid-merge',
        `base ${request.base}: a cold merge of ${unfinished.journal.request.top} (job ${unfinished.journal.jobId}) is unfinished; it can only be finished cold: ` +
          `stop the VM, then run volmerge merge --top ${unfinished.journal.request.top} --base ${request.base}`,
      );
    }
    return resume(request, store, unfinished, base);
  }
  const volumes = await resolveBoth(request);
  await checkPreconditions(volumes, store);
  if (request.domain) return runLibvirtFresh(request, store, volumes);
  if (request.qmp) return runLiveFresh(request, store, volumes);
  await refuseIfHeldOpen(volumes, request.child);
  return runFresh(job, store, volumes);
}

/**
 * Runs a merge as a job: refuses at once ('busy', naming the holder) when another merge holds the chain's lock, and
 * ('locked-by-other-host') when another host of a shared VG holds a volume; finishes an unfinished merge of the same
 * chain instead of starting over; journals every step where recovery will look for it.
 */
export async function runMergeJob(request: MergeJobRequest): Promise<MergeOutcome> {
  assertJobId(request.jobId);
  return withChain(request, ({ store, base }) => (request.dryRun ? dryRun(request, store) : mergeLocked(request, store, base)));
}
