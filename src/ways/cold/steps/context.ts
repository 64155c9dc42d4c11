// What the steps of a cold merge share: the request, the inspection and plan, the job's journal, and what one step
// found for a later one (the commit's re-read of base, the prune's daemon started ahead).
import { VolmergeError } from '../../../errors.js';
import type { JournalWriter } from '../../../engine/journal-writer.js';
import type { BackupImage } from '../../../engine/journal.js';
import type { Inspection } from '../../../merge/inspect.js';
import type { MergePlan } from '../../../merge/plan.js';
import type { MergeRequest } from '../../../merge/request.js';
import type { StorageDaemon } from '../../../qemu/qmp.js';
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
  /** The prune's qemu-storage-daemon, started while the backup is taken; the prune step stops it. */
  pruneDaemon?: Promise<StorageDaemon | undefined>;
  /** Top's backup image being made while the prune runs; the prune step waits for it. */
  topBackup?: Promise<BackupImage>;
}

/** The inspection of a context; a step that needs it cannot run without one (an internal error, never a user's). */
export function inspected(context: MergeContext): Inspection {
  if (!context.inspection) throw new VolmergeError('internal', `internal error: a merge step of ${context.request.top} ran without an inspection`);
  return context.inspection;
}

/** Stops a qemu-storage-daemon started ahead (it has nothing open unless it ran). Never throws. */
export async function stopDaemon(daemon: Promise<StorageDaemon | undefined> | undefined): Promise<void> {
  await (await daemon?.catch(() => undefined))?.stop().catch(() => undefined);
}

/** Stops what a run started and may have left running (the prune's daemon, top's backup, when a step failed). Never throws. */
export async function releaseContext(context: MergeContext): Promise<void> {
  const daemon = context.pruneDaemon;
  const backup = context.topBackup;
  delete context.pruneDaemon;
  delete context.topBackup;
  await Promise.all([stopDaemon(daemon), backup?.catch(() => undefined)]);
}

/** Waits until top's backup image is whole and kept in the store (nothing is left running when it throws). */
export async function finishTopBackup(context: MergeContext): Promise<void> {
  const backup = context.topBackup;
  if (!backup) return;
  delete context.topBackup;
  await backup;
  await context.writer.store.saveBackup(context.writer.key);
}

/** The path that opens a volume now: /dev/VG/LV for an LV (its /dev/dm-N may change across a reboot), the real path otherwise. */
export function openPath(volume: MergeVolume): string {
  return volume.lv ? `/dev/${volume.lv.vg}/${volume.lv.name}` : volume.realPath;
}
