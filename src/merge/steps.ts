// Names of the merge steps, and the hooks that a journal (or a test) attaches around each of them.

/** The merge steps in order (design.md steps 4 to 8; inspect and plan change nothing). */
export const MERGE_STEPS = ['prune', 'extend', 'commit', 'bitmaps', 'verify'] as const;
/** One of MERGE_STEPS. */
export type MergeStep = (typeof MERGE_STEPS)[number];

/** Called before and after each step that changes something; a journal records them durably. */
export interface StepHooks {
  started?(step: MergeStep): Promise<void> | void;
  done?(step: MergeStep, facts: Record<string, unknown>): Promise<void> | void;
}
