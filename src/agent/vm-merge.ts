// VM.merge with vdsm's parameter names: a live merge of a running VM's drive, run as a job of the agent's table like
// SDM.merge's. Through libvirt when the agent runs with --libvirt [URI] (vmID is the domain's UUID: virsh
// blockcommit), else through the VM's QMP monitor (QMP_DIR/<vmID>.qmp, `volmerge agent --qmp-dir DIR`).
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { readDomain } from '../libvirt/domain-xml.js';
import { describeUri } from '../libvirt/virsh.js';
import { resolveSubchain, type AddressContext } from './address.js';
import { MERGE_JOB } from './job-view.js';
import { mergeWork, type MergeWorkRequest } from './merge-work.js';
import type { JobRegistry } from './registry.js';

/** The libvirt connection of an agent started with --libvirt [URI]; uri absent: libvirt's default connection. */
export interface LibvirtConnection {
  uri?: string;
}

/** What VM.merge works with: the agent's services that it reads. */
export interface VmMergeServices extends AddressContext {
  registry: JobRegistry;
  stateDir: string;
  qmpDir?: string;
  libvirt?: LibvirtConnection;
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
  /** volmerge's extension: drop the inconsistent bitmaps instead of refusing (QMP way only). */
  drop_inconsistent?: boolean;
}

/** Which VM the merge goes through: the domain (libvirt) or the QMP socket; refuses what this agent cannot run. */
async function vmTarget(params: VmMergeParams, services: VmMergeServices): Promise<Pick<MergeWorkRequest, 'qmp' | 'domain' | 'connect'>> {
  const { libvirt } = services;
  if (libvirt) {
    if (params.drop_inconsistent) {
      throw new VolmergeError('unsupported', `VM.merge of VM ${params.vmID}: drop_inconsistent is not built for merges through libvirt; stop the domain and merge cold (SDM.merge) with drop_inconsistent`);
    }
    // Asked now, so that an unknown or stopped domain is refused at once, with no job: readDomain names it and the URI.
    const facts = await readDomain({ domain: params.vmID, uri: libvirt.uri }).catch((error: unknown) => {
      // vdsm answers NoSuchVM for any VM it does not run, unknown or stopped: the engine reads both as that one code.
      if (error instanceof VolmergeError && error.code === 'not-found') throw new VolmergeError('vm-gone', `VM.merge of VM ${params.vmID}: ${error.message}`);
      throw error;
    });
    if (!facts.running) {
      throw new VolmergeError('vm-gone', `VM.merge of VM ${params.vmID}: domain ${facts.name} (libvirt at ${describeUri(libvirt.uri)}) is not running; merge with SDM.merge once it is shut off`);
    }
    return { domain: facts.uuid, ...(libvirt.uri ? { connect: libvirt.uri } : {}) };
  }
  if (services.qmpDir) return { qmp: join(services.qmpDir, `${params.vmID}.qmp`) };
  throw new VolmergeError(
    'unsupported',
    `VM.merge of VM ${params.vmID}: this agent runs no live merges; start it with --libvirt [URI] (libvirt owns the VMs) or --qmp-dir DIR (the folder of the VMs' QMP sockets, <vmID>.qmp)`,
  );
}

/** Adds the live merge job that VM.merge asks for; refuses a job id in use, an agent with no way into VMs, unknown volumes or domains. */
export async function startVmMerge(params: VmMergeParams, services: VmMergeServices): Promise<true> {
  const { registry } = services;
  const jobId = params.jobUUID;
  if (registry.get(jobId)) throw new VolmergeError('job-exists', `job ${jobId} already exists; use a new job id`);
  const target = await vmTarget(params, services);
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
      ...target,
      ...(params.drop_inconsistent ? { dropInconsistent: true } : {}),
      ...(params.bandwidth ? { rateLimit: params.bandwidth * 1024 * 1024 } : {}),
      ...(services.commitRateLimit ? { commitRateLimit: services.commitRateLimit } : {}),
    }),
  });
  return true;
}
