// What a merge through libvirt remembers of itself across runs (its journal keeps it): the domain and disk, the layers
// as libvirt opened them (backing indices are looked up again each time: libvirt never renumbers, but a path is what
// identifies a layer), the bitmap plan, and the domain's own checkpoints when it was planned.
import type { LibvirtBitmapPlan } from './bitmap-plan.js';

/** A merge through libvirt as its journal keeps it. */
export interface LibvirtRecord {
  domain: { name: string; uuid: string };
  /** The disk's target (vda): libvirt runs one block job per disk. */
  target: string;
  active: boolean;
  topSource: string;
  baseSource: string;
  aboveSource?: string;
  bitmaps: LibvirtBitmapPlan;
  /** The domain's checkpoints when planned: volmerge never deletes these (only the ones it redefined itself). */
  checkpoints: string[];
}
