// What a merge job is asked (the merge request plus where its state lives and whom to tell), and how it ended.
import type { MergePlan } from '../merge/plan.js';
import type { MergeRequest } from '../merge/request.js';

/** A merge request as a job: its id, its state folder, and the caller's callbacks. */
export interface MergeJobRequest extends MergeRequest {
  /** Identifies the job (agent job id, or one made up by the CLI): letters, digits, '.', '_', '-'. */
  jobId: string;
  /** Folder for journals and bitmap backups (STATE_DIR/jobs/JOB_ID/); a chain on a shared VG keeps them in an LV of that VG instead. */
  stateDir: string;
  /** Inspect, measure and plan only; change nothing. */
  dryRun?: boolean;
  /**
   * The caller saw both volumes when it accepted the job (the agent, for a job that waited as pending): a volume
   * missing now ends the job with 'volume-deleted' instead of 'not-found'.
   */
  volumesValidated?: boolean;
  /** Called once the plan is known (before any change). */
  onPlan?: (plan: MergePlan) => void;
  /** Called when a step starts ('inspect' first); steps a resumed job had finished are not announced. */
  onStep?: (step: string) => void;
  /** Commit progress, 0 to 100. */
  onProgress?: (percent: number) => void;
  /**
   * Asks the merge to stop: the one way every caller interrupts a merge (the CLI's SIGINT and SIGTERM, the agent's
   * Job.abort, any other way into a live merge). Abort it once, at any time, from anywhere; its reason, when an Error,
   * names who stopped the merge in messages ("interrupted by SIGINT"). The merge then stops where it safely can:
   * - a cold merge stops before its next step; a running qemu-img is stopped (the commit too: the journal keeps the
   *   job, which the same merge run again finishes);
   * - a live merge before its pivot cancels qemu's block job and puts the chain back as it was (base's bitmaps record
   *   again, base read-only again);
   * - a live merge whose pivot has started is finished: the abort is ignored and the merge resolves as done.
   * A stopped merge rejects with a VolmergeError 'aborted' whose details.interrupted says where the chain stands:
   * 'as-before' (top not merged) or 'unfinished' (journal kept, resumeFrom: the step a new run goes on from). The caller
   * decides what a second request to stop means (the CLI leaves at once; the journal lets the same merge finish).
   */
  signal?: AbortSignal;
}

/** How a merge ended when it did not throw. */
export interface MergeOutcome {
  status: 'done' | 'planned';
  plan: MergePlan;
  /** Set when the run finished (or, in a dry run, would finish) a merge that an earlier run left unfinished. */
  resumed?: { jobId: string; fromStep: string };
  /** Where base's image ends after the merge (qemu-img check's image-end-offset); null for a raw base; absent in a dry run. */
  usedSize?: number | null;
  /** A live merge: active (the VM writes to base now) or internal (the overlay above top is backed by base now). */
  live?: { active: boolean };
}
