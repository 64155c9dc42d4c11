// The work of one merge job: check base's generation, run the merge through runMergeJob, then increment the generation.
import { VolmergeError, asVolmergeError } from '../errors.js';
import { runMergeJob } from '../jobs/run-merge.js';
import type { MergeRequest } from '../merge/request.js';
import type { JobContext, JobWork } from './registry-types.js';
import { assertGeneration, bumpGeneration, readGeneration, type GenerationHolder } from '../storage/generation.js';
import { readLv } from '../storage/lvm.js';
import { lvNamesOfDevPath, resolveVolume } from '../storage/volume.js';
import type { ResolvedSubchain } from './address.js';

/** What a merge job needs to know. */
export interface MergeWorkRequest {
  jobId: string;
  stateDir: string;
  chain: ResolvedSubchain;
  /** The generation base must be at (SDM.merge's base_generation); when absent, whatever it is when the job starts. */
  baseGeneration?: number;
  /** Commit rate limit in bytes per second: test-only (VOLMERGE_TEST_COMMIT_RATE). */
  commitRateLimit?: number;
  /** Top's child (internal merge), found among the image's volumes. */
  child?: string;
  /** SDM.merge's remove_top and shrink. */
  removeTop?: boolean;
  shrink?: boolean;
  dropBitmaps?: boolean;
  /** Drop the inconsistent bitmaps instead of refusing (drop_inconsistent). */
  dropInconsistent?: boolean;
  /** VM.merge: the VM's QMP socket (a live merge), and its copy limit in bytes per second. */
  qmp?: string;
  rateLimit?: number;
}

/** A merge that recovery found unfinished in the state dir, to be finished by this agent under its job id. */
export interface ResumeWorkRequest {
  jobId: string;
  stateDir: string;
  /** The request its journal keeps. */
  request: MergeRequest;
  commitRateLimit?: number;
}

/** Runs runMergeJob with the job's signal, progress and step reports, and reports its result. */
async function runThroughJob(run: ResumeWorkRequest, context: JobContext): Promise<void> {
  const outcome = await runMergeJob({
    ...run.request,
    jobId: run.jobId,
    stateDir: run.stateDir,
    volumesValidated: true,
    signal: context.signal,
    onProgress: context.progress,
    onStep: context.step,
    ...(run.commitRateLimit ? { rateLimit: run.commitRateLimit } : {}),
  });
  const { drop = [], inconsistent = [] } = outcome.plan.bitmaps;
  context.result({ dropped_bitmaps: [...drop], dropped_inconsistent: [...inconsistent], used_size: outcome.usedSize ?? null });
}

/** Increments base's generation after a merge; a failure says that the merge itself is done. */
async function bumpAfterMerge(holder: GenerationHolder, expected: number, base: string): Promise<void> {
  try {
    await bumpGeneration(holder, expected);
  } catch (thrown) {
    const error = asVolmergeError(thrown);
    throw new VolmergeError(error.code, `base ${base} was merged, but its generation was not incremented: ${error.message}`);
  }
}

/** The job body for an SDM.merge. */
export function mergeWork(request: MergeWorkRequest): JobWork {
  return async (context) => {
    const { chain } = request;
    const expected = request.baseGeneration ?? (await readGeneration(chain.generation));
    // Checked again here: the generation may have moved while the job was pending.
    if (request.baseGeneration !== undefined) await assertGeneration(chain.generation, request.baseGeneration);
    const merge: MergeRequest = {
      top: chain.top,
      base: chain.base,
      ...(request.child ? { child: request.child } : {}),
      ...(request.removeTop ? { removeTop: true } : {}),
      ...(request.shrink ? { shrink: true } : {}),
      ...(request.dropBitmaps ? { dropBitmaps: true } : {}),
      ...(request.dropInconsistent ? { dropInconsistent: true } : {}),
      ...(request.qmp ? { qmp: request.qmp } : {}),
      ...(request.rateLimit ? { rateLimit: request.rateLimit } : {}),
    };
    await runThroughJob({ jobId: request.jobId, stateDir: request.stateDir, request: merge, ...(request.commitRateLimit ? { commitRateLimit: request.commitRateLimit } : {}) }, context);
    await bumpAfterMerge(chain.generation, expected, chain.base);
  };
}

/** Where the generation of a base volume found by recovery is kept: its LV, or its sidecar file; none for a plain device. */
export async function generationHolderOf(base: string): Promise<GenerationHolder | undefined> {
  // A shared VG's base is inactive here again once its job has put it back as it was: lvs names its LV all the same.
  const names = lvNamesOfDevPath(base);
  const lv = names ? await readLv(names.vg, names.lv).catch(() => undefined) : undefined;
  if (lv) return { kind: 'lv', vg: lv.vg, lv: lv.name };
  const volume = await resolveVolume(base, 'base');
  if (volume.lv) return { kind: 'lv', vg: volume.lv.vg, lv: volume.lv.name };
  return volume.kind === 'file' ? { kind: 'file', path: volume.path } : undefined;
}

/** The job body that finishes a merge found unfinished at start-up; the generation moves on from wherever it is. */
export function resumeWork(request: ResumeWorkRequest): JobWork {
  return async (context) => {
    await runThroughJob(request, context);
    const holder = await generationHolderOf(request.request.base);
    if (holder) await bumpAfterMerge(holder, await readGeneration(holder), request.request.base);
  };
}
