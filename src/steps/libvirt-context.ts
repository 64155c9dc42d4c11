// What the steps of a live merge through libvirt share: the request and plan, the job's journal, the domain (by UUID
// once planned), its record (disk, layers, bitmap plan), the event stream that wakes the waits, and the space watch.
import type { JournalWriter } from '../engine/journal-writer.js';
import type { DomainEvents } from '../libvirt/events.js';
import type { LibvirtRecord } from '../libvirt/record.js';
import type { DomainRef } from '../libvirt/virsh.js';
import type { MergePlan } from '../merge/plan.js';
import type { MergeRequest } from '../merge/request.js';
import type { SpaceWatch } from '../merge/space-watch.js';
import type { MergeVolume } from './context.js';

/** The context of one run of the libvirt table. */
export interface LibvirtContext {
  request: MergeRequest;
  plan: MergePlan;
  writer: JournalWriter;
  ref: DomainRef;
  record: LibvirtRecord;
  events: DomainEvents;
  /** Base as the journal knows it (its LV, to extend). */
  base: MergeVolume;
  /** Base's space watch (an LV base), from the extend step until the close step. */
  watch?: SpaceWatch;
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
}

/** Stops the space watch, if one runs; never throws. */
export async function stopLibvirtWatch(context: LibvirtContext): Promise<void> {
  const watch = context.watch;
  delete context.watch;
  await watch?.stop().catch(() => undefined);
}
