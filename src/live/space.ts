// Space for base while a live merge runs through the VM's QMP monitor: the shared watch (src/merge/space-watch.ts)
// with a write threshold on base's storage node (BLOCK_WRITE_THRESHOLD), and a job that ENOSPC paused (on-error
// enospc; the threshold can be overtaken) given space and resumed (BLOCK_JOB_ERROR, block-job-resume).
import { watchThreshold, type SpaceOptions as SharedOptions, type SpaceWatch, type ThresholdDriver } from '../merge/space-watch.js';
import { QmpCommandError, type QmpClient } from '../qemu/qmp-client.js';
import type { LiveChain } from './chain.js';
import { findJob } from './job.js';

export { thresholdFor, type SpaceWatch } from '../merge/space-watch.js';

/** Options of watchSpace: the shared ones and qemu's job id. */
export interface SpaceOptions extends SharedOptions {
  jobId: string;
}

/** The watch's driver over QMP. */
function qmpDriver(client: QmpClient, chain: LiveChain, jobId: string): ThresholdDriver {
  const node = chain.base.storage;
  return {
    basePath: chain.base.path,
    async setThreshold(bytes) {
      await client.call('block-set-write-threshold', { 'node-name': node, 'write-threshold': bytes });
    },
    async clearThreshold() {
      await client.call('block-set-write-threshold', { 'node-name': node, 'write-threshold': 0 }).catch(() => undefined);
    },
    subscribe(handlers) {
      return client.onEvent((event) => {
        if (event.event === 'BLOCK_WRITE_THRESHOLD' && event.data['node-name'] === node) handlers.crossed();
        else if (event.event === 'BLOCK_JOB_ERROR' && event.data.device === jobId) handlers.full();
      });
    },
    async jobStoppedFull() {
      return (await findJob(client, jobId))?.ioStatus === 'nospace';
    },
    async resumeJob() {
      await client.call('block-job-resume', { device: jobId }).catch((error: unknown) => {
        if (!(error instanceof QmpCommandError)) throw error;
      });
    },
  };
}

/** Starts watching base's space for the job; resolves once base holds neededBytes plus room. */
export function watchSpace(client: QmpClient, chain: LiveChain, options: SpaceOptions): Promise<SpaceWatch> {
  return watchThreshold(qmpDriver(client, chain, options.jobId), options);
}
