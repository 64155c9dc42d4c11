// Which table a journal belongs to: the cold merge (qemu-img; journals older than live merges have no kind), the live
// merge (a VM's block-commit over QMP) or the live merge through libvirt. Readers of journals (resume, failure, status)
// ask here, never assume cold.
import type { Journal } from '../engine/journal.js';
import type { TableShape } from '../engine/step.js';
import { COLD_MERGE_SHAPE } from './cold-merge.js';
import { LIBVIRT_MERGE_SHAPE } from './libvirt-merge.js';
import { LIVE_MERGE_SHAPE } from './live-merge.js';

/** The shape of the table that runs this journal's job. */
export function shapeOfJournal(journal: Pick<Journal, 'kind'>): TableShape {
  if (journal.kind === 'libvirt') return LIBVIRT_MERGE_SHAPE;
  return journal.kind === 'live' ? LIVE_MERGE_SHAPE : COLD_MERGE_SHAPE;
}
