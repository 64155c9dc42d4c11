// Runs the libvirt table for a job (a fresh one or one found unfinished) with the domain's event stream open, and
// re-attaches to a job that an earlier run left: the commit goes on inside QEMU (and libvirt) when volmerge dies, so
// the next run reads the domain's live XML and the disk's job, and finishes from where the journal stands.
import { executeTable } from '../engine/executor.js';
import type { JournalWriter } from '../engine/journal-writer.js';
import type { JobStore } from '../engine/store.js';
import { VolmergeError } from '../errors.js';
import { cancelCommit } from '../libvirt/commit-end.js';
import { DomainEvents } from '../libvirt/events.js';
import { settledState } from '../libvirt/job-state.js';
import type { DomainRef } from '../libvirt/virsh.js';
import { log } from '../log.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { stopLibvirtWatch, type LibvirtContext } from '../steps/libvirt-context.js';
import { startLibvirtWatch } from '../steps/libvirt-extend.js';
import { LIBVIRT_MERGE } from '../steps/libvirt-merge.js';
import { recordFailure } from './failure.js';
import { journalVolume } from './fresh-run.js';
import type { MergeJobRequest, MergeOutcome } from './job-request.js';
import { assertSameTop } from './resume.js';
import { nextStep, resumePoint, takeOver, type UnfinishedJob } from './unfinished.js';

/** Opens the domain's event stream for body and closes it afterwards. */
export async function withEvents<T>(ref: DomainRef, body: (events: DomainEvents) => Promise<T>): Promise<T> {
  const events = DomainEvents.start(ref);
  try {
    return await body(events);
  } finally {
    await events.stop();
  }
}

/** Removes the job's state after a merge that is over (done, or done with its bitmaps lost); a failure to do so is logged. */
async function removeState(writer: JournalWriter): Promise<void> {
  try {
    await writer.store.remove(writer.key);
  } catch (error) {
    log.warn(`job ${writer.journal.jobId}: the merge is over but ${writer.store.locationOf(writer.key)} could not be removed: ${(error as Error).message}`);
  }
}

/** Records a failure; base that lost bitmaps at a commit otherwise done leaves nothing to finish: its state goes too. */
async function failed(writer: JournalWriter, thrown: unknown): Promise<VolmergeError> {
  const error = await recordFailure(writer, thrown);
  if (error.code === 'bitmap-write-failed' && writer.isDone('pivot')) await removeState(writer);
  return error;
}

/** Runs the steps the journal has not done; on success the job's state is removed, on failure kept while the chain needs it. */
export async function executeLibvirt(request: MergeJobRequest, writer: JournalWriter, context: LibvirtContext, resumed?: MergeOutcome['resumed']): Promise<MergeOutcome> {
  const run = (signal?: AbortSignal): Promise<void> =>
    executeTable(LIBVIRT_MERGE, context, writer, {
      describe: `live merge of ${request.top} into ${request.base} through libvirt`,
      ...(signal ? { signal } : {}),
      ...(request.onStep ? { onStep: request.onStep } : {}),
    });
  try {
    try {
      await run(request.signal);
    } catch (thrown) {
      if (!request.signal?.aborted || writer.journal.steps.pivot !== undefined) throw await failed(writer, thrown);
      // Aborted before the pivot: the commit is cancelled, unless it had already ended merged (then it finishes).
      const outcome = await cancelJob(writer, context).catch(async (error: unknown) => {
        throw await failed(writer, error);
      });
      if (outcome === 'cancelled') throw thrown;
      delete context.signal;
      await run().catch(async (error: unknown) => {
        throw await failed(writer, error);
      });
    }
  } finally {
    await stopLibvirtWatch(context);
  }
  await removeState(writer);
  return { status: 'done', plan: writer.journal.plan, usedSize: null, live: { active: context.record.active }, ...(resumed ? { resumed } : {}) };
}

/**
 * An abort before the pivot: libvirt's job is aborted and the chain left as it was (the journal goes: what the job had
 * copied into base is below top, which covers it); 'merged' when an internal commit had ended by itself already.
 */
async function cancelJob(writer: JournalWriter, context: LibvirtContext): Promise<'cancelled' | 'merged'> {
  const outcome = await cancelCommit(context.ref, context.record);
  if (outcome === 'merged') {
    log.warn(`job ${writer.journal.jobId}: the commit had ended merged before the abort; finishing it`);
    return 'merged';
  }
  await stopLibvirtWatch(context);
  await writer.store.remove(writer.key);
  log.warn(`job ${writer.journal.jobId}: aborted; libvirt's commit of ${context.record.topSource} cancelled, the chain as it was`);
  return 'cancelled';
}

/** Before the pivot: when the disk has no job and top is still there, nothing of top is promised to base: start over. */
async function reattach(writer: JournalWriter, ref: DomainRef): Promise<void> {
  const record = writer.journal.libvirt;
  if (!record) throw new VolmergeError('needs-attention', `job ${writer.journal.jobId}: a libvirt journal without its libvirt record; move ${writer.store.locationOf(writer.key)} away`);
  if (writer.journal.steps.pivot !== undefined) return;
  const state = await settledState(ref, record);
  if (state.job || state.merged) return;
  log.warn(`domain ${record.domain.name}: no commit of ${record.topSource} runs any more and it is still in the chain; starting the merge's steps again`);
  await writer.update((j) => {
    j.steps = {};
  });
}

/** The domain of a journal: its UUID (a rename does not lose it) at the URI it was merged through. */
export function journalDomain(record: { domain: { uuid: string } }, connect: string | undefined): DomainRef {
  return { domain: record.domain.uuid, uri: connect };
}

/** Finishes the unfinished libvirt merge of the chain whose base is given. */
export async function resumeLibvirt(request: MergeJobRequest, store: JobStore, unfinished: UnfinishedJob, base: Volume): Promise<MergeOutcome> {
  const earlier = unfinished.journal;
  assertSameTop(request, earlier, await resolveVolume(request.top, 'top').catch(() => undefined));
  log.warn(`base ${request.base}: job ${earlier.jobId} left this live merge through libvirt unfinished at ${resumePoint(earlier)} (attempt ${earlier.attempt}); re-attaching to it`);
  const resumed = { jobId: earlier.jobId, fromStep: nextStep(earlier) };
  const writer = await takeOver(store, unfinished, request.jobId);
  const record = writer.journal.libvirt;
  const ref = record ? journalDomain(record, writer.journal.request.connect ?? request.connect) : { domain: request.domain ?? '', uri: request.connect };
  return withEvents(ref, async (events) => {
    let context: LibvirtContext;
    try {
      await reattach(writer, ref);
      if (!record) throw new VolmergeError('internal', `job ${writer.journal.jobId}: libvirt record lost`);
      context = {
        request: writer.journal.request,
        plan: writer.journal.plan,
        writer,
        ref,
        record,
        events,
        base: journalVolume(base),
        ...(request.signal ? { signal: request.signal } : {}),
        ...(request.onProgress ? { onProgress: request.onProgress } : {}),
      };
      // The watch is not in the journal: a base LV is watched again while the job still runs.
      if (writer.isDone('extend') && !writer.isDone('pivot')) await startLibvirtWatch(context);
    } catch (thrown) {
      throw await recordFailure(writer, thrown);
    }
    request.onPlan?.(writer.journal.plan);
    return executeLibvirt(request, writer, context, resumed);
  });
}
