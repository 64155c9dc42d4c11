// A merge job's failure, as its journal keeps it: the error (volume-deleted when a successful query says a volume is
// gone), every step left started marked failed; the journal kept only while the chain needs it.
import { probeVolumes, volumeDeletedError } from '../engine/volume-probe.js';
import type { JournalWriter } from '../engine/journal-writer.js';
import { needsRecovery, now } from '../engine/journal.js';
import { asVolmergeError, VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { topRemovalStarted } from '../steps/cold-merge.js';
import { shapeOfJournal } from '../steps/shapes.js';

const GONE_CODES = new Set(['not-found', 'lv-missing', 'vg-missing']);

/** Turns "not found" into "volume-deleted" for a job whose volumes were seen before (the agent accepted it earlier). */
export function missingMeansDeleted(error: unknown, request: { jobId: string; volumesValidated?: boolean | undefined }): unknown {
  if (!request.volumesValidated || !(error instanceof VolmergeError) || !GONE_CODES.has(error.code)) return error;
  return new VolmergeError('volume-deleted', `${error.message}; job ${request.jobId} ended because a volume was removed while it waited; nothing was recreated or changed`);
}

/** Records a failure in the journal (as volume-deleted when a volume is gone), keeps the journal only when the chain needs it. */
export async function recordFailure(writer: JournalWriter, thrown: unknown): Promise<VolmergeError> {
  let error = asVolmergeError(thrown);
  const { journal } = writer;
  try {
    const probe = await probeVolumes(journal.volumes, { topMayBeGone: topRemovalStarted(journal), recordedAt: journal.createdAt });
    if (probe.state === 'gone' && probe.role) error = volumeDeletedError(probe.role, journal.volumes[probe.role].path, probe.reason, journal.jobId);
    await writer.update((j) => {
      j.state = 'failed';
      j.error = { code: error.code, message: error.message };
      for (const record of Object.values(j.steps)) {
        if (record?.status !== 'started') continue;
        record.status = 'failed';
        record.endedAt = now();
        record.error = { code: error.code, message: error.message };
      }
    });
    if (!needsRecovery(writer.journal, shapeOfJournal(writer.journal))) await writer.store.remove(writer.key);
    else log.info(`job ${journal.jobId}: journal kept in ${writer.store.locationOf(writer.key)}; merging the chain again finishes it`);
  } catch (bookkeeping) {
    log.error(`job ${journal.jobId}: could not record the failure in its journal: ${(bookkeeping as Error).message}`);
  }
  return error;
}
