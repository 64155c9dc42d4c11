// A cold run (no --qmp) that finds an unfinished live merge of its chain. While the VM answers, the live job is its
// to finish: refused. When the VM is gone (its socket refuses), the job can never be finished live: before its pivot
// top still holds all of its data and the chain on disk still runs top -> base, so the live job is closed as vm-gone
// and the cold merge proceeds. After a pivot, top is stale (the VM may have written to base since): never merged again.
import type { JobStore } from '../../engine/store.js';
import { VolmergeError } from '../../errors.js';
import { probeMonitor } from '../../qemu/monitor-probe.js';
import type { MergeJobRequest } from '../../jobs/job-request.js';
import type { UnfinishedJob } from '../../jobs/unfinished.js';
import { closeOrphan } from '../../jobs/orphan-end.js';

/**
 * Closes the chain's unfinished live job when its VM is gone, so that a cold merge finishes the chain; refuses
 * otherwise. Resolves true when the job's commit had started (base may hold part of top).
 */
export async function closeOrphanedLiveJob(request: MergeJobRequest, store: JobStore, unfinished: UnfinishedJob): Promise<boolean> {
  const { journal } = unfinished;
  const socket = journal.request.qmp ?? '';
  const live = `volmerge merge --top ${journal.request.top} --base ${journal.request.base} --qmp ${socket}`;
  // Only a socket that refuses (or is gone) says the VM is gone; a monitor another client holds is a VM that is there.
  if (socket && (await probeMonitor(socket)).state !== 'gone') {
    throw new VolmergeError(
      'mid-merge',
      `base ${request.base}: a live merge of ${journal.request.top} (job ${journal.jobId}) is unfinished and its VM still answers at ${socket}; finish it live: ${live}`,
    );
  }
  const gone = `the VM behind ${socket || '(no socket recorded)'} is gone; the live merge ended before its pivot and a cold merge finishes the chain`;
  return closeOrphan(request, store, unfinished, { holder: 'VM', went: 'went away', gone });
}
