// VM.merge with vdsm's parameter names: a live merge of a running VM's drive, through the VM's QMP monitor
// (QMP_DIR/<vmID>.qmp, `volmerge agent --qmp-dir DIR`), run as a job of the agent's table like SDM.merge's.
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { resolveSubchain, type AddressContext } from './address.js';
import { MERGE_JOB } from './job-view.js';
import { mergeWork } from './merge-work.js';
import type { JobRegistry } from './registry.js';

/** What VM.merge works with: the agent's services that it reads. */
export interface VmMergeServices extends AddressContext {
  registry: JobRegistry;
  stateDir: string;
  qmpDir?: string;
  commitRateLimit?: number;
}

/** VM.merge's params (checked against rpc-params-vm-merge.schema.json before this runs). */
export interface VmMergeParams {
  vmID: string;
  drive: { domainID: string; imageID: string; volumeID: string };
  baseVolUUID: string;
  topVolUUID: string;
  /** MiB per second (libvirt's unit); 0 or absent: unlimited. */
  bandwidth?: number;
  jobUUID: string;
  /** volmerge's extension: drop the inconsistent bitmaps instead of refusing. */
  drop_inconsistent?: boolean;
}

/** Adds the live merge job that VM.merge asks for; refuses a job id in use, an agent without --qmp-dir, unknown volumes. */
export async function startVmMerge(params: VmMergeParams, services: VmMergeServices): Promise<true> {
  const { registry } = services;
  const jobId = params.jobUUID;
  if (registry.get(jobId)) throw new VolmergeError('job-exists', `job ${jobId} already exists; use a new job id`);
  if (!services.qmpDir) {
    throw new VolmergeError('unsupported', `VM.merge of VM ${params.vmID}: this agent runs no live merges; start it with --qmp-dir DIR (the folder of the VMs' QMP sockets, <vmID>.qmp)`);
  }
  const { domainID, imageID } = params.drive;
  const chain = await resolveSubchain({ sd_id: domainID, img_id: imageID, top_id: params.topVolUUID, base_id: params.baseVolUUID }, services);
  registry.add({
    id: jobId,
    description: MERGE_JOB.description,
    volumes: [chain.top, chain.base],
    work: mergeWork({
      jobId,
      stateDir: services.stateDir,
      chain,
      qmp: join(services.qmpDir, `${params.vmID}.qmp`),
      ...(params.drop_inconsistent ? { dropInconsistent: true } : {}),
      ...(params.bandwidth ? { rateLimit: params.bandwidth * 1024 * 1024 } : {}),
      ...(services.commitRateLimit ? { commitRateLimit: services.commitRateLimit } : {}),
    }),
  });
  return true;
}
