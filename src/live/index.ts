// Live merge: merge top into base while a VM runs, through the VM's QMP monitor. A library of
// steps that a step engine calls in this order; each probes qemu before it acts, so a re-run after a crash of volmerge
// (the job keeps running inside qemu) finishes what is left, and each wait takes an AbortSignal.
//
//   const client = await QmpClient.connect(socket);                 // one client per monitor at a time
//   const chain = await findLiveChain(client, { top, base });        // nodes, chain check, active or internal
//   const plan = planLiveBitmaps(chain);                             // refuses an inconsistent or busy bitmap
//   const watch = await watchSpace(client, chain, {...});            // LVs only: grows base before and during the job
//   await disableForJob(client, chain, plan);                        // base's merge targets stop recording
//   await pruneLiveBitmaps(client, chain, plan);                     // base reopened writable: stale bitmaps go
//   await startCommit(client, chain, { jobId });                     // or finds the job already running
//   await waitReady(client, jobId, { signal: AbortSignal.any([signal, watch.failed]), onProgress }); // ready/pending
//   await pivotWithBitmaps(client, chain, plan, jobId);              // one transaction, then pivot or finalize
//   await closeOldTop(client, chain); await watch.stop();            // old top's nodes closed, threshold cleared
//
// The prune comes before the job: its first burst ignores the speed limit and can fill base, and removing a bitmap
// needs a free cluster. Abort: cancel(client, chain, jobId, { reenable: plan.disable }). Re-attach: connect again,
// findLiveChain (before the pivot the chain still reads top -> base), findJob(client, jobId), then the same steps from
// where it stands. The step engine calls these from the live table (src/steps/live-merge.ts), run by
// `volmerge merge --qmp` and the agent's VM.merge. Measured qemu behaviour: docs/live-merge-notes.md.

/** The steps, their options and results. */
export { QmpClient, QmpCommandError } from '../qemu/qmp-client.js';
export { planLiveBitmaps, type LiveBitmapPlan } from './bitmap-plan.js';
export { carryActions, disableForJob, enableAgain, pruneLiveBitmaps } from './bitmap-steps.js';
export { cancel, type CancelOptions } from './cancel.js';
export { findLiveChain, type LiveChain, type LiveVolume } from './chain.js';
export { findJob, setSpeed, startCommit, waitJob, waitReady, type CommitOptions, type LiveJob } from './job.js';
export { closeOldTop, mergedInVm, pivotWithBitmaps } from './pivot.js';
export { queryStatus } from './queries.js';
export { thresholdFor, watchSpace, type SpaceOptions, type SpaceWatch } from './space.js';
