// Names of the merge steps, and the hooks that a journal (or a test) attaches around each of them.

/**
 * The merge steps in order (design.md steps 4 to 9, plus crash safety's backup and mark); inspect and plan change nothing.
 * backup: copy the bitmaps the merge keeps into a small qcow2 beside the journal; mark: flag base as mid-merge;
 * unmark: take the flag off once verify has passed. Then the end of the merge, each a no-op unless asked: retire: mark
 * top not to be used; rebase: point top's child at base (internal merge); shrink: reduce the base LV; remove-top.
 */
export const MERGE_STEPS = ['backup', 'prune', 'extend', 'mark', 'commit', 'bitmaps', 'verify', 'unmark', 'retire', 'rebase', 'shrink', 'remove-top'] as const;
/** One of MERGE_STEPS. */
export type MergeStep = (typeof MERGE_STEPS)[number];

/** Steps that open an image read-write through qemu-img: a crash inside them can leave bitmaps in-use. */
export const BITMAP_WRITING_STEPS: readonly MergeStep[] = ['prune', 'commit', 'bitmaps'];

/** The first step from which the chain can only be finished forward: base may be marked and hold part of top's data. */
export const POINT_OF_NO_RETURN: MergeStep = 'mark';

/** Whether a string names a merge step. */
export function isMergeStep(name: string): name is MergeStep {
  return (MERGE_STEPS as readonly string[]).includes(name);
}

/** Called before and after each step that changes something; a journal records them durably. */
export interface StepHooks {
  started?(step: MergeStep): Promise<void> | void;
  done?(step: MergeStep, facts: Record<string, unknown>): Promise<void> | void;
  /**
   * A step that changed nothing (its plan asked for nothing, or it only read): recorded as done with the next durable
   * write instead of two writes of its own; a crash before that write only makes a resumed job run it again.
   */
  doneQuietly?(step: MergeStep, facts: Record<string, unknown>): Promise<void> | void;
  /** Steps that an earlier run finished (a resumed job): skipped, not run again. */
  isDone?(step: MergeStep): boolean;
  /** Forgets a step that was undone (retire, when the rebase failed and top was unmarked): the next run does it again. */
  forget?(step: MergeStep): Promise<void> | void;
}
