// Runs the cold-merge table for a job under its journal: on success the job's state is removed and the outcome
// returned; on failure the journal records it (kept only while the chain needs it); an aborted run ends with the error
// that says where the chain stands.
import { executeTable } from '../../engine/executor.js';
import type { JournalWriter } from '../../engine/journal-writer.js';
import type { JournalVolume } from '../../engine/journal.js';
import { log } from '../../log.js';
import type { Inspection } from '../../merge/inspect.js';
import type { StorageDaemon } from '../../qemu/qmp.js';
import { COLD_MERGE } from './steps/table.js';
import { releaseContext, type MergeContext } from './steps/context.js';
import type { MergeVolume } from '../../merge/merge-volume.js';
import { recordFailure } from '../../jobs/failure.js';
import { interruptedError } from '../../jobs/interrupted.js';
import type { MergeJobRequest, MergeOutcome } from '../../jobs/job-request.js';

/** Runs the steps the journal has not done; inspection is absent only when top may be gone (only the end is left); daemon: one started ahead for the steps. */
export async function executeJob(
  request: MergeJobRequest,
  writer: JournalWriter,
  chain: { inspection?: Inspection; volumes: { top: MergeVolume | JournalVolume; base: MergeVolume }; daemon?: Promise<StorageDaemon | undefined> },
  resumed?: MergeOutcome['resumed'],
): Promise<MergeOutcome> {
  const context: MergeContext = {
    request: writer.journal.request,
    plan: writer.journal.plan,
    volumes: chain.volumes,
    writer,
    ...(chain.inspection ? { inspection: chain.inspection } : {}),
    ...(chain.daemon ? { daemon: chain.daemon } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
    ...(request.onProgress ? { onProgress: request.onProgress } : {}),
  };
  try {
    await executeTable(COLD_MERGE, context, writer, {
      describe: `merge of ${request.top} into ${request.base}`,
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.onStep ? { onStep: request.onStep } : {}),
    });
  } catch (thrown) {
    const error = await recordFailure(writer, thrown);
    // Checked after the bookkeeping: a terminal's Ctrl-C reaches qemu-img too, whose end may be seen first.
    throw request.signal?.aborted ? interruptedError(writer, request.signal, error) : error;
  } finally {
    await releaseContext(context);
  }
  try {
    await writer.store.remove(writer.key);
  } catch (error) {
    log.warn(`job ${writer.journal.jobId}: the merge is done but ${writer.store.locationOf(writer.key)} could not be removed: ${(error as Error).message}`);
  }
  const used = writer.journal.steps.verify?.facts?.imageEndOffset;
  return { status: 'done', plan: writer.journal.plan, usedSize: typeof used === 'number' ? used : null, ...(resumed ? { resumed } : {}) };
}
