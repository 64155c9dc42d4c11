// Whether a mark still marks the volume that has its place now: a sidecar beside a path, or a state-folder file named
// by a device number, outlives the volume it was set on; an LV's tag goes with its LV and never outlives it.
import type { MarkHolder, MidMergeMark } from './marks.js';
import { compareVolumes, type CurrentVolume } from './same-volume.js';
import { liveKeyOf } from './volume-identity.js';

/** The job's own record of the marked volume, for a mark of an earlier release that names no identity. */
export interface MarkedVolumeRecord {
  identity: string;
  /** When the job began (its journal's createdAt). */
  recordedAt: string;
}

/**
 * Why a mark does not mark this volume (it was set on another volume, gone since, that had this path or device), or
 * undefined when it does or that cannot be told. A mark without an identity is judged by the job's journal when there
 * is one, else by its time: a volume that came into being after the mark was set is not the marked one.
 */
export function staleMarkReason(mark: MidMergeMark, holder: MarkHolder, volume: CurrentVolume, record?: MarkedVolumeRecord): string | undefined {
  if (holder.kind === 'lv') return undefined;
  const identity = mark.identity ?? record?.identity ?? liveKeyOf(volume.identity);
  const recordedAt = mark.identity ? mark.since : (record?.recordedAt ?? mark.since);
  const sameness = compareVolumes({ identity, realPath: volume.realPath, ...(recordedAt ? { recordedAt } : {}) }, volume);
  return sameness.verdict === 'other' ? `it was set on a volume that is gone; ${sameness.reason}` : undefined;
}

/** The current-volume view of a resolved volume, for comparisons. */
export function currentVolumeOf(volume: { identity: string; realPath: string; lv?: { createdAtMs?: number } | undefined }): CurrentVolume {
  return { identity: volume.identity, realPath: volume.realPath, ...(volume.lv?.createdAtMs !== undefined ? { lvCreatedAtMs: volume.lv.createdAtMs } : {}) };
}
