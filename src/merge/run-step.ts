// Runs one merge step between the journal's hooks and the crash points, or skips it when an earlier run finished it.
import { VolmergeError } from '../errors.js';
import { crashPoint } from './crash-point.js';
import type { MergeRequest } from './pipeline.js';
import type { MergeStep } from './steps.js';

/** The parts of a request that running a step needs. */
export type StepRequest = Pick<MergeRequest, 'top' | 'base' | 'hooks' | 'signal' | 'onStep'>;

/** Runs one step: announced, journaled as started, run, journaled as done with its facts; crash points on both sides. */
export async function runStep(request: StepRequest, name: MergeStep, body: () => Promise<Record<string, unknown>>): Promise<void> {
  if (request.hooks?.isDone?.(name)) return;
  if (request.signal?.aborted) throw new VolmergeError('aborted', `merge of ${request.top} into ${request.base} aborted before ${name}`);
  request.onStep?.(name);
  await request.hooks?.started?.(name);
  crashPoint(name, 'before');
  const facts = await body();
  await request.hooks?.done?.(name, facts);
  crashPoint(name, 'after');
}
