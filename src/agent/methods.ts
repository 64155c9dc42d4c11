// The agent's JSON-RPC methods: SDM.merge, VM.merge (live), Host.getJobs, Volume.getInfo, Host.ping2 and Host.ping as vdsm's; Job.abort
// and Job.delete as extensions. Job ids may be given as a command-line merge's journal id (cli-PID-MS) too.
import { VolmergeError } from '../errors.js';
import type { JobRegistry } from './registry.js';
import { assertGeneration } from '../storage/generation.js';
import { resolveSubchain, type AddressContext, type SubchainInfo } from './address.js';
import { findImageChild } from './image-child.js';
import { mergeWork } from './merge-work.js';
import { tableJobId } from './job-ids.js';
import { jobStatusView, MERGE_JOB, type JobStatusView } from './job-view.js';
import { volumeInfoParams } from './volume-params.js';
import { volumeInfo } from './volume-info.js';
import type { MethodTable } from './rpc.js';
import { startVmMerge, type VmMergeParams } from './vm-merge.js';

/** What the methods work with. */
export interface AgentServices extends AddressContext {
  registry: JobRegistry;
  stateDir: string;
  version: string;
  /** Test-only commit rate limit (bytes per second). */
  commitRateLimit?: number;
  /** The folder of the VMs' QMP sockets (<vmID>.qmp): VM.merge runs live merges through them. */
  qmpDir?: string;
}

interface MergeParams {
  job_id: string;
  subchain_info: SubchainInfo;
  merge_bitmaps?: boolean;
  remove_top?: boolean;
  shrink?: boolean;
  drop_inconsistent?: boolean;
}

/** Builds the method table over the agent's services. */
export function agentMethods(services: AgentServices): MethodTable {
  const { registry } = services;
  return {
    'SDM.merge': {
      paramsSchema: 'rpc-params-sdm-merge.schema.json',
      handler: async (raw) => {
        const params = raw as unknown as MergeParams;
        const jobId = params.job_id;
        if (registry.get(jobId)) throw new VolmergeError('job-exists', `job ${jobId} already exists; use a new job id`);
        const info = params.subchain_info;
        const chain = await resolveSubchain(info, services);
        if (info.base_generation !== undefined) await assertGeneration(chain.generation, info.base_generation);
        // An internal merge: top's child among the image's volumes is rebased onto base once the merge is verified.
        const child = await findImageChild(chain, info);
        registry.add({
          id: jobId,
          description: MERGE_JOB.description,
          volumes: child ? [chain.top, chain.base, child] : [chain.top, chain.base],
          work: mergeWork({
            jobId,
            stateDir: services.stateDir,
            chain,
            ...(child ? { child } : {}),
            ...(params.remove_top ? { removeTop: true } : {}),
            ...(params.shrink ? { shrink: true } : {}),
            // vdsm's merge_bitmaps=false: top-only bitmaps are dropped; absent, volmerge keeps them all.
            ...(params.merge_bitmaps === false ? { dropBitmaps: true } : {}),
            ...(params.drop_inconsistent ? { dropInconsistent: true } : {}),
            ...(info.base_generation !== undefined ? { baseGeneration: info.base_generation } : {}),
            ...(services.commitRateLimit ? { commitRateLimit: services.commitRateLimit } : {}),
          }),
        });
        return true;
      },
    },
    'VM.merge': {
      paramsSchema: 'rpc-params-vm-merge.schema.json',
      handler: async (raw) => startVmMerge(raw as unknown as VmMergeParams, services),
    },
    'Host.getJobs': {
      paramsSchema: 'rpc-params-host-get-jobs.schema.json',
      handler: async (raw) => {
        const params = raw as { job_ids?: string[]; job_type?: string };
        const result: Record<string, JobStatusView> = {};
        if (params.job_type !== undefined && params.job_type !== MERGE_JOB.jobType) return result;
        for (const job of registry.list(params.job_ids?.map(tableJobId))) result[job.id] = jobStatusView(job);
        return result;
      },
    },
    'Job.abort': {
      paramsSchema: 'rpc-params-job-abort.schema.json',
      handler: async (raw) => {
        registry.abort(tableJobId((raw as { job_id: string }).job_id));
        return true;
      },
    },
    'Job.delete': {
      paramsSchema: 'rpc-params-job-delete.schema.json',
      handler: async (raw) => {
        registry.delete(tableJobId((raw as { job_id: string }).job_id));
        return true;
      },
    },
    'Host.ping': {
      paramsSchema: 'rpc-params-host-ping.schema.json',
      handler: async () => ({ name: 'volmerge', version: services.version }),
    },
    'Host.ping2': {
      paramsSchema: 'rpc-params-host-ping2.schema.json',
      handler: async () => true,
    },
    'Volume.getInfo': {
      paramsSchema: 'rpc-params-volume-get-info.schema.json',
      handler: async (raw) => volumeInfo(volumeInfoParams(raw), services),
    },
  };
}
