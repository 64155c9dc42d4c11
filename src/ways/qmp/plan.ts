// A new live merge: the VM's chain planned through its monitor (nothing changes), a journal of kind 'live' written
// with qemu's job id and the bitmap plan, then the live table run. A dry run stops after the plan.
import type { JobStore } from '../../engine/store.js';
import { planLiveMerge } from '../../live/merge-plan.js';
import type { Volume } from '../../storage/volume.js';
import { journalChain } from './steps/context.js';
import { missingMeansDeleted } from '../../jobs/failure.js';
import { startJournal } from '../../jobs/new-journal.js';
import type { MergeJobRequest, MergeOutcome } from '../../jobs/job-request.js';
import { executeLive, withMonitor } from './run.js';

/** qemu's id of our block job: stable for the life of the volmerge job (takeovers keep it in the journal). */
export function qemuJobId(jobId: string): string {
  return `volmerge-${jobId}`;
}

/** Plans the live merge (the VM's monitor is held) and reports the plan; changes nothing. */
export async function planLiveDry(request: MergeJobRequest): Promise<MergeOutcome> {
  return withMonitor(request.qmp, async (client) => {
    request.onStep?.('inspect');
    const { plan } = await planLiveMerge(client, request);
    request.onPlan?.(plan);
    return { status: 'planned', plan };
  });
}

/** Plans from what the VM holds now, writes a new live journal and runs every step. */
export async function runLiveFresh(request: MergeJobRequest, store: JobStore, volumes?: { top: Volume; base: Volume }): Promise<MergeOutcome> {
  return withMonitor(request.qmp, async (client) => {
    request.onStep?.('inspect');
    let planned;
    try {
      planned = await planLiveMerge(client, request, volumes);
    } catch (thrown) {
      throw missingMeansDeleted(thrown, request);
    }
    request.onPlan?.(planned.plan);
    const { inspection, plan, chain, bitmaps } = planned;
    const qemuJob = qemuJobId(request.jobId);
    const writer = await startJournal(store, request, inspection, plan, { kind: 'live', live: { qemuJob, bitmaps, chain: journalChain(chain) } });
    const context = {
      request: writer.journal.request,
      plan,
      writer,
      client,
      chain,
      bitmaps,
      qemuJob,
      base: inspection.base,
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    };
    return executeLive(request, writer, context);
  });
}
