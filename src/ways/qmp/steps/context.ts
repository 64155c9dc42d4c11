// What the steps of a live merge share: the request and plan, the job's journal, the VM's monitor and the chain as it
// sits in the VM, qemu's job id, the bitmap plan, and the space watch while the job runs.
import type { JournalWriter } from '../../../engine/journal-writer.js';
import type { Journal, LiveJournalChain } from '../../../engine/journal.js';
import type { LiveBitmapPlan } from '../../../live/bitmap-plan.js';
import type { LiveChain } from '../../../live/chain.js';
import type { SpaceWatch } from '../../../live/space.js';
import type { MergePlan } from '../../../merge/plan.js';
import type { MergeRequest } from '../../../merge/request.js';
import type { QmpClient } from '../../../qemu/qmp-client.js';
import type { MergeVolume } from '../../../merge/merge-volume.js';

/** The context of one run of the live-merge table. */
export interface LiveContext {
  request: MergeRequest;
  plan: MergePlan;
  writer: JournalWriter;
  /** The VM's monitor, held for the whole run (a monitor serves one client at a time). */
  client: QmpClient;
  chain: LiveChain;
  bitmaps: LiveBitmapPlan;
  /** qemu's job id: the same for every run of the job, so that a later run finds the job again. */
  qemuJob: string;
  /** Base as the journal knows it (its LV, to extend). */
  base: MergeVolume;
  /** Base's space watch (an LV base), from the extend step until the close step. */
  watch?: SpaceWatch;
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
}

/** The chain as the journal keeps it. */
export function journalChain(chain: LiveChain): LiveJournalChain {
  return {
    active: chain.active,
    topFormat: chain.top.format,
    topStorage: chain.top.storage,
    baseFormat: chain.base.format,
    baseStorage: chain.base.storage,
    root: chain.root,
    device: chain.device,
    ...(chain.above ? { above: chain.above } : {}),
  };
}

/** The chain from the journal's record (after the pivot, when the VM's chain no longer shows top -> base). */
export function chainFromJournal(record: LiveJournalChain, journal: Pick<Journal, 'volumes' | 'request'>): LiveChain {
  const { top, base } = journal.volumes;
  return {
    top: { path: journal.request.top, format: record.topFormat, storage: record.topStorage, storagePath: top.realPath, bitmaps: [] },
    base: { path: journal.request.base, format: record.baseFormat, storage: record.baseStorage, storagePath: base.realPath, bitmaps: [] },
    active: record.active,
    root: record.root,
    device: record.device,
    ...(record.above ? { above: record.above } : {}),
  };
}

/** Stops the space watch, if one runs; never throws. */
export async function stopWatch(context: LiveContext): Promise<void> {
  const watch = context.watch;
  delete context.watch;
  await watch?.stop().catch(() => undefined);
}
