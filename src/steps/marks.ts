// Steps mark and unmark: from the start of the commit until verify passes, base carries a mid-merge mark (LV tag,
// sidecar, or a file in the state folder) naming the job: the chain can then only be finished forward.
import type { Step } from '../engine/step.js';
import { clearMark, describeMarkHolder, markHolderFor, setMark } from '../storage/marks.js';
import type { MergeContext } from './context.js';

/** The mark step: the point of no return. */
export const markStep: Step<MergeContext> = {
  name: 'mark',
  pointOfNoReturn: true,
  journaling: () => 'durable',
  async run(context) {
    const { writer } = context;
    const holder = markHolderFor(context.volumes.base, writer.stateDir);
    await setMark(holder, writer.journal.jobId, writer.stateDir, context.volumes.base.identity);
    return { mark: describeMarkHolder(holder) };
  },
};

/** The unmark step: taking the mark off again is harmless, so a crash inside it leaves a job that a resumed run finishes. */
export const unmarkStep: Step<MergeContext> = {
  name: 'unmark',
  journaling: () => 'repeatable',
  async run(context) {
    const holder = markHolderFor(context.volumes.base, context.writer.stateDir);
    await clearMark(holder);
    return { mark: describeMarkHolder(holder) };
  },
};
