// The cold merge as a table of steps, in order. backup: copy the bitmaps the merge keeps beside the journal; prune:
// remove base's stale bitmaps; extend: grow a base LV; mark: flag base mid-merge (the point of no return); commit;
// leaks: give back clusters an interrupted writer leaked; bitmaps: carry top's bitmaps into base; verify; unmark. Then the end of the merge, each a no-op unless asked:
// retire: mark top not to be used; rebase: point top's child at base; shrink: reduce the base LV; remove-top.
import { shapeOf, type StepTable } from '../engine/step.js';
import type { Journal } from '../engine/journal.js';
import { backupStep } from './backup.js';
import { bitmapsStep } from './bitmaps.js';
import { commitStep } from './commit.js';
import type { MergeContext } from './context.js';
import { extendStep } from './extend.js';
import { leaksStep } from './leaks.js';
import { markStep, unmarkStep } from './marks.js';
import { pruneStep } from './prune.js';
import { rebaseStep } from './rebase.js';
import { removeTopStep } from './remove-top.js';
import { retireStep } from './retire.js';
import { shrinkStep } from './shrink.js';
import { verifyStep } from './verify.js';

/** The steps of a cold merge. */
export const COLD_MERGE: StepTable<MergeContext> = [
  backupStep,
  pruneStep,
  extendStep,
  markStep,
  commitStep,
  leaksStep,
  bitmapsStep,
  verifyStep,
  unmarkStep,
  retireStep,
  rebaseStep,
  shrinkStep,
  removeTopStep,
];

/** What the journal needs to know of the cold merge's table. */
export const COLD_MERGE_SHAPE = shapeOf('cold', COLD_MERGE);

/** The step names of a cold merge, in order. */
export const MERGE_STEPS: readonly string[] = COLD_MERGE_SHAPE.steps;

/** Whether the job's remove-top step has started: from then on top may be gone, by the job's own doing. */
export function topRemovalStarted(journal: Pick<Journal, 'steps'>): boolean {
  return journal.steps['remove-top'] !== undefined;
}
