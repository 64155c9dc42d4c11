// A volume as every way into a merge records it for its steps.
import type { VolumeKind } from '../storage/volume.js';

/** A volume as the end of a merge needs it: a resolved Volume, or a journal's record of one (top, once it may be gone). */
export interface MergeVolume {
  kind: VolumeKind;
  path: string;
  realPath: string;
  identity: string;
  lv?: { vg: string; name: string } | undefined;
}
