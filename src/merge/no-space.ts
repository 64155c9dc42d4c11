// Turns "the commit ran out of space" into an error that names base, the bytes planned and what to do next.
import { asVolmergeError, VolmergeError } from '../errors.js';
import { describeVolume, type Volume } from '../storage/volume.js';
import type { MergePlan } from './plan.js';

/** What an operator does after base ran out of space, by kind of volume. */
function remedy(base: Volume): string {
  if (base.kind === 'lv') return 'run the same merge again: it measures base again and extends the LV before it resumes the commit';
  if (base.kind === 'file') return "free space on base's file system, then run the same merge again to finish it";
  return 'the chain top -> base still reads as before; copy it to a larger volume (qemu-img convert), since a fixed device cannot grow';
}

/** The commit's failure, with a 'no-space' one made to name base, the plan's bytes and the remedy; others unchanged. */
export function explainCommitFailure(thrown: unknown, base: Volume, plan: MergePlan): unknown {
  const error = asVolmergeError(thrown);
  if (error.code !== 'no-space') return thrown;
  return new VolmergeError(
    'no-space',
    `base ${describeVolume(base)} ran out of space during the commit (planned ${plan.neededSize} bytes, base is ${plan.extendTo ?? plan.baseSize} bytes): ` +
      `${error.message}; top still holds all of its data; ${remedy(base)}`,
    error.details,
  );
}
