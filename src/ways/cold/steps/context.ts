// What the steps of a cold merge share: the request, the inspection and plan, the job's journal, and what one step
// found or started for a later one (the commit's re-read of base, the merge's qemu-storage-daemon).
import { VolmergeError } from '../../../errors.js';
import type { JournalWriter } from '../../../engine/journal-writer.js';
import type { Inspection } from '../../../merge/inspect.js';
import type { MergePlan } from '../../../merge/plan.js';
import type { MergeRequest } from '../../../merge/request.js';
import { startStorageDaemon, type StorageDaemon } from '../../../qemu/qmp.js';
import type { ImageInfo } from '../../../qemu/types.js';
import type { MergeVolume } from '../../../merge/merge-volume.js';

/** The context of one run of the cold-merge table. */
export interface MergeContext {
  request: MergeRequest;
  plan: MergePlan;
  /** Top and base; top may be gone (by the job's own remove-top step) when only the end of the merge is left. */
  volumes: { top: MergeVolume; base: MergeVolume };
  /** What inspection found; absent when only the end of the merge is left (every step that needs it is done). */
  inspection?: Inspection;
  /** The job's journal: the backup step names its images there, marks carry its job id. */
  writer: JournalWriter;
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
  /** Base as the commit's re-read found it: the bitmaps step reuses it instead of asking qemu-img again. */
  baseAfterCommit?: ImageInfo;
  /**
   * The run's qemu-storage-daemon (undefined: not installed, qemu-img does the work), started ahead of the first step
   * that needs it; it holds a volume open only inside a step that writes bitmaps. The step that ends it removes it.
   */
  daemon?: Promise<StorageDaemon | undefined>;
  /** Set by a commit that carried top's bitmaps into base in its own daemon session: the bitmaps step has nothing left. */
  bitmapsCarried?: boolean;
}

/** Starts the run's qemu-storage-daemon unless it is started already; a failure to start surfaces where it is awaited. */
export function startDaemonAhead(context: MergeContext): void {
  if (context.daemon) return;
  context.daemon = startStorageDaemon();
  context.daemon.catch(() => undefined);
}

/** The run's qemu-storage-daemon (started now if it was not), or undefined when it is not installed. */
export function daemonOf(context: MergeContext): Promise<StorageDaemon | undefined> {
  startDaemonAhead(context);
  return context.daemon as Promise<StorageDaemon | undefined>;
}

/** Forgets the run's daemon once a step has ended it; a later step that needs one starts another. */
export function forgetDaemon(context: MergeContext): void {
  delete context.daemon;
}

/** The inspection of a context; a step that needs it cannot run without one (an internal error, never a user's). */
export function inspected(context: MergeContext): Inspection {
  if (!context.inspection) throw new VolmergeError('internal', `internal error: a merge step of ${context.request.top} ran without an inspection`);
  return context.inspection;
}

/** Quits a qemu-storage-daemon (it closes what it holds, writing bitmaps back). Never throws. */
export async function stopDaemon(daemon: Promise<StorageDaemon | undefined> | undefined): Promise<void> {
  await (await daemon?.catch(() => undefined))?.quit().catch(() => undefined);
}

/** Stops what a run started and may have left running (the daemon, when a step failed). Never throws. */
export async function releaseContext(context: MergeContext): Promise<void> {
  const daemon = context.daemon;
  delete context.daemon;
  await stopDaemon(daemon);
}

/** The path that opens a volume now: /dev/VG/LV for an LV (its /dev/dm-N may change across a reboot), the real path otherwise. */
export function openPath(volume: MergeVolume): string {
  return volume.lv ? `/dev/${volume.lv.vg}/${volume.lv.name}` : volume.realPath;
}
