// One merge run as a job: the entry point that the CLI and the agent share (journal, lock and recovery hook in here).
import { mergeChain, type MergeOutcome, type MergeRequest } from '../merge/pipeline.js';

/** A merge request plus where its job keeps state. */
export interface MergeJobRequest extends MergeRequest {
  /** Identifies the job (agent job id, or one made up by the CLI). */
  jobId: string;
  /** Folder for journals, locks and bitmap backups. */
  stateDir: string;
}

/** Runs a merge as a job. For now a plain merge; crash safety wraps it with journal, lock and recovery. */
export async function runMergeJob(request: MergeJobRequest): Promise<MergeOutcome> {
  return mergeChain(request);
}
