// Whether a run that would finish an unfinished merge names the same top as the run that began it.
import { VolmergeError } from '../errors.js';
import { compareVolumes } from '../storage/same-volume.js';
import { currentVolumeOf } from '../storage/stale-mark.js';
import type { Volume } from '../storage/volume.js';
import type { MergeJobRequest } from './job-request.js';
import type { UnfinishedJob } from './unfinished.js';

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
