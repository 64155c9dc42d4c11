// A merge from a plan of what is there now: in a new journal, or in a taken-over one that had not reached the mark.
import type { JournalWriter } from '../../engine/journal-writer.js';
import type { JobStore } from '../../engine/store.js';
import type { Inspection } from '../../merge/inspect.js';
import type { MergePlan } from '../../merge/plan.js';
import { planFor } from '../../merge/planning.js';
import { bitmapsOf } from '../../qemu/types.js';
import type { Volume } from '../../storage/volume.js';
import { startStorageDaemon } from '../../qemu/qmp.js';
import { stopDaemon } from './steps/context.js';
import { executeJob } from './execute.js';
import { missingMeansDeleted, recordFailure } from '../../jobs/failure.js';
import { journalBasics, startJournal } from '../../jobs/new-journal.js';
import type { MergeJobRequest, MergeOutcome } from '../../jobs/job-request.js';


/**
 * The new plan of a job that starts over, naming also the inconsistent bitmaps that its earlier run dropped (gone from
 * top and base now), so that the result still says which bitmaps were lost.
 */
function withEarlierDrops(plan: MergePlan, earlier: MergePlan, inspection: Inspection): MergePlan {
  const present = new Set([...bitmapsOf(inspection.topInfo), ...bitmapsOf(inspection.baseInfo)].map((b) => b.name));
  const dropped = (earlier.bitmaps.inconsistent ?? []).filter((name) => !present.has(name));
  if (dropped.length === 0) return plan;
  const inconsistent = [...new Set([...(plan.bitmaps.inconsistent ?? []), ...dropped])].sort();
  return { ...plan, bitmaps: { ...plan.bitmaps, inconsistent } };
}

/**
 * Announces the inspection, plans, and announces the plan; afterEarlierRun: the job ran before (a journal taken over, or
 * base holding part of top after a live job's end), so top's leaked clusters are counted too.
 */
export async function planAnnounced(request: MergeJobRequest, volumes?: { top: Volume; base: Volume }, afterEarlierRun = false): Promise<{ inspection: Inspection; plan: MergePlan }> {
  request.onStep?.('inspect');
  const planned = await planFor(request, volumes, afterEarlierRun || request.baseHoldsPartOfTop ? 'both' : 'base');
  request.onPlan?.(planned.plan);
  return planned;
}

/** Plans from what is there now and runs every step; previous: the taken-over journal of a job that had not reached the mark. */
export async function runFresh(
  request: MergeJobRequest,
  store: JobStore,
  volumes?: { top: Volume; base: Volume },
  previous?: JournalWriter,
  resumed?: MergeOutcome['resumed'],
): Promise<MergeOutcome> {
  // The merge's qemu-storage-daemon starts while the chain is read and measured: it opens nothing until a step asks.
  const daemon = startStorageDaemon();
  daemon.catch(() => undefined);
  let planned: { inspection: Inspection; plan: MergePlan };
  try {
    planned = await planAnnounced(request, volumes, previous !== undefined);
  } catch (thrown) {
    await stopDaemon(daemon);
    if (previous) throw await recordFailure(previous, thrown);
    throw missingMeansDeleted(thrown, request);
  }
  let writer: JournalWriter;
  try {
    writer = await journalFor(request, store, planned, previous);
  } catch (thrown) {
    await stopDaemon(daemon);
    throw thrown;
  }
  const { inspection } = planned;
  return executeJob(request, writer, { inspection, volumes: { top: inspection.top, base: inspection.base }, daemon }, resumed);
}

/** The job's journal with this plan: the taken-over one rewritten, or a new one; written before anything changes. */
async function journalFor(request: MergeJobRequest, store: JobStore, planned: { inspection: Inspection; plan: MergePlan }, previous?: JournalWriter): Promise<JournalWriter> {
  const { inspection } = planned;
  const plan = previous ? withEarlierDrops(planned.plan, previous.journal.plan, inspection) : planned.plan;
  if (previous) {
    const basics = journalBasics(request, inspection, plan);
    await previous.update((j) => Object.assign(j, basics));
    return previous;
  }
  return startJournal(store, request, inspection, plan);
}
