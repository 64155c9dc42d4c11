// Runs the live-merge table for a job (a fresh one or one found unfinished) while holding the VM's monitor, and
// re-attaches to a job that an earlier run left: the block job goes on inside qemu when volmerge dies, so the next run
// connects again, finds the chain and qemu's job by its id, and finishes from where the journal stands.
import { executeTable } from '../engine/executor.js';
import type { JournalWriter } from '../engine/journal-writer.js';
import type { JobStore } from '../engine/store.js';
import { VolmergeError } from '../errors.js';
import { cancel } from '../live/cancel.js';
import { findLiveChain, type LiveChain } from '../live/chain.js';
import { findJob } from '../live/job.js';
import { log } from '../log.js';
import { QmpClient } from '../qemu/qmp-client.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { chainFromJournal, journalChain, stopWatch, type LiveContext } from '../steps/live-context.js';
import { startSpaceWatch } from '../steps/live-extend.js';
import { LIVE_MERGE } from '../steps/live-merge.js';
import { recordFailure } from './failure.js';
import { interruptedError } from './interrupted.js';
import { journalVolume } from './fresh-run.js';
import type { MergeJobRequest, MergeOutcome } from './job-request.js';
import { assertSameTop } from './resume.js';
import { nextStep, resumePoint, takeOver, type UnfinishedJob } from './unfinished.js';

/** Connects to the VM's monitor for body and closes it afterwards (the monitor then serves its next client). */
export async function withMonitor<T>(socket: string | undefined, body: (client: QmpClient) => Promise<T>): Promise<T> {
  if (!socket) throw new VolmergeError('usage', 'a live merge needs --qmp SOCKET: the QMP monitor socket of the VM that runs the chain');
  const client = await QmpClient.connect(socket);
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/** Runs the steps the journal has not done; on success the job's state is removed, on failure it is kept while the chain needs it. */
export async function executeLive(request: MergeJobRequest, writer: JournalWriter, context: LiveContext, resumed?: MergeOutcome['resumed']): Promise<MergeOutcome> {
  try {
    await executeTable(LIVE_MERGE, context, writer, {
      describe: `live merge of ${request.top} into ${request.base}`,
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.onStep ? { onStep: request.onStep } : {}),
    });
  } catch (thrown) {
    const signal = request.signal;
    if (signal?.aborted && writer.journal.steps.pivot === undefined) throw await cancelJob(writer, context, signal, thrown);
    const error = await recordFailure(writer, thrown);
    throw signal?.aborted ? interruptedError(writer, signal, error) : error;
  } finally {
    await stopWatch(context);
  }
  try {
    await writer.store.remove(writer.key);
  } catch (error) {
    log.warn(`job ${writer.journal.jobId}: the live merge is done but ${writer.store.locationOf(writer.key)} could not be removed: ${(error as Error).message}`);
  }
  return { status: 'done', plan: writer.journal.plan, usedSize: null, live: { active: context.chain.active }, ...(resumed ? { resumed } : {}) };
}

/**
 * An abort before the pivot (Job.abort): qemu's job is cancelled and the chain left as it was (base's bitmaps record
 * again, base read-only again), and the journal goes; what the job had copied into base is below top, which covers it.
 * A cancel that fails keeps the journal, as any failure past the commit does.
 */
async function cancelJob(writer: JournalWriter, context: LiveContext, signal: AbortSignal, thrown: unknown): Promise<VolmergeError> {
  try {
    await cancel(context.client, context.chain, context.qemuJob, { reenable: context.bitmaps.disable });
  } catch (error) {
    return interruptedError(writer, signal, await recordFailure(writer, error));
  }
  await writer.store.remove(writer.key);
  log.warn(`job ${writer.journal.jobId}: aborted; block job ${context.qemuJob} cancelled, ${context.request.top} -> ${context.request.base} as it was`);
  return interruptedError(writer, signal, thrown, context.qemuJob);
}

/**
 * The chain for a resumed run. Before the pivot the VM still shows top -> base: it is found again (and checked). When
 * qemu has no job under our id (never started, or the VM was restarted) or only a failed one, nothing of top is
 * promised to base yet: the table runs again from its first step. After the pivot the journal's record is used.
 */
async function reattach(client: QmpClient, writer: JournalWriter, request: MergeJobRequest, qemuJob: string): Promise<LiveChain> {
  const record = writer.journal.live;
  if (!record) throw new VolmergeError('needs-attention', `job ${writer.journal.jobId}: a live journal without its live record; move ${writer.store.locationOf(writer.key)} away`);
  if (writer.journal.steps.pivot !== undefined) return chainFromJournal(record.chain, writer.journal);
  const chain = await findLiveChain(client, { top: request.top, base: request.base });
  let job = await findJob(client, qemuJob);
  if (job?.status === 'concluded') {
    log.warn(`job ${qemuJob}: qemu ended it before the pivot${job.error ? ` (${job.error})` : ''}; starting the commit again`);
    await client.call('job-dismiss', { id: qemuJob });
    job = undefined;
  }
  await writer.update((j) => {
    if (j.live) j.live.chain = journalChain(chain);
    if (!job) j.steps = {};
  });
  return chain;
}

/** Finishes the unfinished live merge of the chain whose base is given, through the VM's monitor (request.qmp). */
export async function resumeLive(request: MergeJobRequest, store: JobStore, unfinished: UnfinishedJob, base: Volume): Promise<MergeOutcome> {
  const earlier = unfinished.journal;
  assertSameTop(request, earlier, await resolveVolume(request.top, 'top').catch(() => undefined));
  log.warn(`base ${request.base}: job ${earlier.jobId} left this live merge unfinished at ${resumePoint(earlier)} (attempt ${earlier.attempt}); re-attaching to it`);
  const resumed = { jobId: earlier.jobId, fromStep: nextStep(earlier) };
  return withMonitor(request.qmp, async (client) => {
    const writer = await takeOver(store, unfinished, request.jobId);
    const qemuJob = writer.journal.live?.qemuJob ?? '';
    let context: LiveContext;
    try {
      const chain = await reattach(client, writer, request, qemuJob);
      const live = writer.journal.live;
      if (!live) throw new VolmergeError('internal', `job ${writer.journal.jobId}: live record lost`);
      context = {
        request: writer.journal.request,
        plan: writer.journal.plan,
        writer,
        client,
        chain,
        bitmaps: live.bitmaps,
        qemuJob,
        base: journalVolume(base),
        ...(request.signal ? { signal: request.signal } : {}),
        ...(request.onProgress ? { onProgress: request.onProgress } : {}),
      };
      // The watch is not in the journal: a base LV is watched again while the job still runs.
      if (writer.isDone('extend') && !writer.isDone('pivot')) await startSpaceWatch(context);
    } catch (thrown) {
      throw await recordFailure(writer, thrown);
    }
    request.onPlan?.(writer.journal.plan);
    return executeLive(request, writer, context, resumed);
  });
}
