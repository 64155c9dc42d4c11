// Step retire: a merged top that keeps no child reading through it is marked not to be used (LV tag, sidecar, or a
// file in the state folder), with an undo for when its child could not be rebased and still needs it.
import type { Step } from '../../../engine/step.js';
import { clearMark, describeMarkHolder, markHolderFor, setMark } from '../../../storage/marks.js';
import type { MergeContext } from './context.js';

/** Marks top retired under the job's id (idempotent); resolves with where the mark is. */
export async function retireTop(context: MergeContext): Promise<string> {
  const { writer } = context;
  const holder = markHolderFor(context.volumes.top, writer.stateDir, 'retired');
  await setMark(holder, writer.journal.jobId, writer.stateDir, context.volumes.top.identity);
  return describeMarkHolder(holder);
}

/** Whether the plan retires top (it has a child to rebase, or it is to be removed). */
function retires(context: MergeContext): boolean {
  return context.plan.finalize?.retireTop === true;
}

/** The retire step. */
export const retireStep: Step<MergeContext> = {
  name: 'retire',
  journaling: (context) => (retires(context) ? 'durable' : 'idle'),
  async run(context) {
    if (!retires(context)) return { retired: false };
    return { retired: true, mark: await retireTop(context) };
  },
  async undo(context) {
    await clearMark(markHolderFor(context.volumes.top, context.writer.stateDir, 'retired'));
  },
};
