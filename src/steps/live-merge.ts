// The live merge as a table of steps, run by the same executor as the cold merge, inside the VM that holds the chain.
// disable: base's merge targets stop recording (the commit's own copy would mark all of top in them); extend: a base LV
// grown and watched; prune: base's stale bitmaps removed (base reopened writable for it), and the inconsistent ones
// that --drop-inconsistent drops from top and base, before the job's first burst, which ignores the speed limit, can
// fill base; commit: block-commit started, or found running (the point of no return); wait: the copy done (ready, or
// pending for an internal merge); pivot: top's bitmaps carried in one transaction, then the chain changed; close: old
// top's nodes closed.
import { shapeOf, type Step, type StepTable } from '../engine/step.js';
import { disableForJob, dropInconsistentBitmaps, pruneLiveBitmaps } from '../live/bitmap-steps.js';
import { startCommit, waitReady } from '../live/job.js';
import { closeOldTop, pivotWithBitmaps } from '../live/pivot.js';
import { log } from '../log.js';
import { liveExtendStep } from './live-extend.js';
import { stopWatch, type LiveContext } from './live-context.js';

/** The signal that stops a wait: the caller's (before the pivot only), or a failed extension of base. */
function waitSignal(context: LiveContext, caller: 'caller' | 'not the caller'): AbortSignal | undefined {
  const signals = [caller === 'caller' ? context.signal : undefined, context.watch?.failed].filter((s): s is AbortSignal => s !== undefined);
  return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
}

const disableStep: Step<LiveContext> = {
  name: 'disable',
  journaling: () => 'repeatable',
  async run(context) {
    await disableForJob(context.client, context.chain, context.bitmaps);
    return { disabled: context.bitmaps.disable };
  },
};

const commitStep: Step<LiveContext> = {
  name: 'commit',
  pointOfNoReturn: true,
  journaling: () => 'durable',
  async run(context) {
    const speed = context.request.rateLimit ?? 0;
    const job = await startCommit(context.client, context.chain, { jobId: context.qemuJob, speed });
    log.info(`job ${context.qemuJob}: block-commit of ${context.request.top} into ${context.request.base} ${job.status} (${job.percent}%)`);
    return { qemuJob: context.qemuJob, status: job.status, active: context.chain.active };
  },
};

// With --drop-inconsistent the prune also removes the inconsistent bitmaps from top and base, first.
const pruneStep: Step<LiveContext> = {
  name: 'prune',
  journaling: (context) => (context.bitmaps.prune.length > 0 || context.bitmaps.drop?.length ? 'durable' : 'quiet'),
  async run(context) {
    const dropped = await dropInconsistentBitmaps(context.client, context.chain, context.bitmaps);
    await pruneLiveBitmaps(context.client, context.chain, context.bitmaps);
    return { pruned: context.bitmaps.prune, ...(dropped.length > 0 ? { dropped } : {}) };
  },
};

const waitStep: Step<LiveContext> = {
  name: 'wait',
  journaling: () => 'quiet',
  async run(context) {
    const signal = waitSignal(context, 'caller');
    const job = await waitReady(context.client, context.qemuJob, {
      ...(signal ? { signal } : {}),
      onProgress: (state) => context.onProgress?.(state.percent),
    });
    return { status: job.status };
  },
};

// Once the pivot has started the merge is finished whatever the caller says: an abort (Ctrl-C, Job.abort) no longer
// stops it, and the wait for qemu's end of the job does not watch the caller's signal.
const pivotStep: Step<LiveContext> = {
  name: 'pivot',
  writesBitmaps: true,
  finishesOnAbort: true,
  journaling: () => 'durable',
  async run(context) {
    const signal = waitSignal(context, 'not the caller');
    await pivotWithBitmaps(context.client, context.chain, context.bitmaps, context.qemuJob, signal ? { signal } : {});
    return { carried: context.bitmaps.merge, active: context.chain.active };
  },
};

const closeStep: Step<LiveContext> = {
  name: 'close',
  journaling: () => 'repeatable',
  async run(context) {
    await stopWatch(context);
    const { left } = await closeOldTop(context.client, context.chain);
    if (left.length > 0) log.warn(`top ${context.request.top}: the VM keeps node ${left.join(', ')} open; it stays locked until the VM closes it`);
    return { left };
  },
};

/** The steps of a live merge. */
export const LIVE_MERGE: StepTable<LiveContext> = [disableStep, liveExtendStep, pruneStep, commitStep, waitStep, pivotStep, closeStep];

/** What the journal needs to know of the live merge's table. */
export const LIVE_MERGE_SHAPE = shapeOf('live', LIVE_MERGE);
