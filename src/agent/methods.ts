// The agent's JSON-RPC methods: SDM.merge, Host.getJobs, Job.abort, Job.delete, Host.ping.
import { VolmergeError } from '../errors.js';
import type { JobRegistry } from './registry.js';
import type { JobRecord } from './registry-types.js';
import { assertGeneration } from '../storage/generation.js';
import { resolveSubchain, type AddressContext, type SubchainInfo } from './address.js';
import { findImageChild } from './image-child.js';
import { mergeWork } from './merge-work.js';
import { applicationCode } from './rpc-errors.js';
import type { MethodTable } from './rpc.js';

/** What the methods work with. */
export interface AgentServices extends AddressContext {
  registry: JobRegistry;
  stateDir: string;
  version: string;
  /** Test-only commit rate limit (bytes per second). */
  commitRateLimit?: number;
}

/** vdsm's type and description of a merge job. */
export const MERGE_JOB = { jobType: 'storage', description: 'merge_subchain' } as const;

/** A job as Host.getJobs shows it (rpc-job-status.schema.json). */
export interface JobStatusView {
  id: string;
  job_type: 'storage';
  description: string;
  status: JobRecord['status'];
  progress: number;
  step?: string;
  error?: { code: number; name: string; message: string };
}

/** The public view of a job record. */
export function jobStatusView(job: JobRecord): JobStatusView {
  return {
    id: job.id,
    job_type: MERGE_JOB.jobType,
    description: job.description,
    status: job.status,
    progress: Math.round(job.progress * 100) / 100,
    ...(job.step ? { step: job.step } : {}),
    ...(job.error ? { error: { code: applicationCode(job.error.code), name: job.error.code, message: job.error.message } } : {}),
  };
}

interface MergeParams {
  job_id: string;
  subchain_info: SubchainInfo;
  merge_bitmaps?: boolean;
  remove_top?: boolean;
  shrink?: boolean;
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
        if (params.merge_bitmaps === false) {
          throw new VolmergeError('unsupported', `job ${jobId}: merge_bitmaps=false is not supported; volmerge always keeps base's bitmaps valid`);
        }
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
            ...(info.base_generation !== undefined ? { baseGeneration: info.base_generation } : {}),
            ...(services.commitRateLimit ? { commitRateLimit: services.commitRateLimit } : {}),
          }),
        });
        return true;
      },
    },
    'Host.getJobs': {
      paramsSchema: 'rpc-params-host-get-jobs.schema.json',
      handler: async (raw) => {
        const params = raw as { job_ids?: string[]; job_type?: string };
        const result: Record<string, JobStatusView> = {};
        if (params.job_type !== undefined && params.job_type !== MERGE_JOB.jobType) return result;
        for (const job of registry.list(params.job_ids)) result[job.id] = jobStatusView(job);
        return result;
      },
    },
    'Job.abort': {
      paramsSchema: 'rpc-params-job-abort.schema.json',
      handler: async (raw) => {
        registry.abort((raw as { job_id: string }).job_id);
        return true;
      },
    },
    'Job.delete': {
      paramsSchema: 'rpc-params-job-delete.schema.json',
      handler: async (raw) => {
        registry.delete((raw as { job_id: string }).job_id);
        return true;
      },
    },
    'Host.ping': {
      paramsSchema: 'rpc-params-host-ping.schema.json',
      handler: async () => ({ name: 'volmerge', version: services.version }),
    },
  };
}
