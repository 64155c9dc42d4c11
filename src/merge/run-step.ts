// Runs one merge step between the journal's hooks and the crash points, or skips it when an earlier run finished it.
import { VolmergeError } from '../errors.js';
import { crashPoint } from './crash-point.js';
import type { MergeRequest } from './pipeline.js';
import type { MergeStep } from './steps.js';

/** The parts of a request that running a step needs. */
export type StepRequest = Pick<MergeRequest, 'top' | 'base' | 'hooks' | 'signal' | 'onStep'>;

/**
 * Runs one step: announced, journaled as started, run, journaled as done with its facts; crash points on both sides.
 * changesNothing: the caller knows that this run of the step only reads (or has nothing to do), so it needs no
 * journal writes of its own: it is recorded as done along with the next step's. repeatable: the step changes something,
 * but a crash anywhere in it is mended by running it again, and nothing needs its record before the next step's
 * write: it is journaled the same way.
 */
export async function runStep(
  request: StepRequest,
  name: MergeStep,
  body: () => Promise<Record<string, unknown>>,
  options: { changesNothing?: boolean; repeatable?: boolean } = {},
): Promise<void> {
  const hooks = request.hooks;
  if (hooks?.isDone?.(name)) return;
  if (request.signal?.aborted) throw new VolmergeError('aborted', `merge of ${request.top} into ${request.base} aborted before ${name}`);
  request.onStep?.(name);
  const quietly = (options.changesNothing === true || options.repeatable === true) && hooks?.doneQuietly !== undefined;
  if (!quietly) await hooks?.started?.(name);
  crashPoint(name, 'before');
  const facts = await body();
  if (quietly) await hooks.doneQuietly?.(name, facts);
  else await hooks?.done?.(name, facts);
  crashPoint(name, 'after');
}
