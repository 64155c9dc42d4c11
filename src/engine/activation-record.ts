// How a shared VG's chain was active on a host before its job first activated it there, kept in the job's journal: so
// that whichever run ends the job (an agent started again after a kill, say) puts base and top back as they were before
// the job, not as a killed run of it left them (active exclusively). A record describes one boot of one host only.
import { log } from '../log.js';
import type { LocalActivation } from '../storage/shared-vg.js';
import type { ActivationRecord, Journal } from './journal.js';

/** One LV of the chain as this run found it, before it activated it exclusively. */
export interface FoundActivation {
  vg: string;
  lv: string;
  before: LocalActivation;
}

/** This boot of this host, as a record names it. */
export interface ThisBoot {
  bootId: string;
  host: string;
}

/** The most records a journal keeps (one per boot of a host that ran the job); the oldest goes first. */
export const MAX_ACTIVATION_RECORDS = 64;

/**
 * Adds this boot's record to a journal that lacks it, when the journal is new or already keeps records: what this run
 * found is then how the chain was before the job first activated it on this boot. Returns the record that describes
 * this boot, or undefined for a journal written before records were kept (it is left as it is).
 */
export function recordThisBoot(journal: Journal, found: readonly FoundActivation[], boot: ThisBoot, isNew: boolean): ActivationRecord | undefined {
  if (!journal.activationBefore) {
    if (!isNew) return undefined;
    journal.activationBefore = [];
  }
  const records = journal.activationBefore;
  let record = records.find((r) => r.bootId === boot.bootId);
  if (!record) {
    record = { bootId: boot.bootId, host: boot.host, volumes: found.map(({ vg, lv, before }) => ({ vg, lv, before })) };
    if (records.length >= MAX_ACTIVATION_RECORDS) records.splice(0, records.length - MAX_ACTIVATION_RECORDS + 1);
    records.push(record);
  }
  return record;
}

/** How a record says an LV was before the job, or undefined when it does not name it. */
export function recordedBefore(record: ActivationRecord | undefined, vg: string, lv: string): LocalActivation | undefined {
  return record?.volumes.find((v) => v.vg === vg && v.lv === lv)?.before;
}

/**
 * How to leave an LV at the end of a run: as the record says when this run found it active exclusively (an earlier,
 * killed run of the job leaves it so); as found otherwise (a run of the job never leaves a volume inactive or shared
 * unless it was so before, so someone else changed it since).
 */
export function stateToLeave(found: LocalActivation, recorded: LocalActivation | undefined): LocalActivation {
  return found === 'exclusive' && recorded !== undefined ? recorded : found;
}

/** One run's view of its chain: how it found each LV, and the record of this boot that the job's journal keeps. */
export class ChainActivation {
  /** This boot's record in the job's journal, once a journal was written (undefined: none written, or an old journal). */
  private record: ActivationRecord | undefined;
  private warned = false;

  constructor(
    readonly found: readonly FoundActivation[],
    readonly boot: ThisBoot,
  ) {}

  /** Adds this boot's record to a journal about to be written (in place, so that its writer keeps it); an old journal is logged once. */
  stamp(journal: Journal, where: string, isNew: boolean): void {
    const record = recordThisBoot(journal, this.found, this.boot, isNew);
    if (record) this.record = structuredClone(record);
    else if (!this.warned) {
      this.warned = true;
      const found = this.found.map((v) => `${v.vg}/${v.lv} ${v.before}`).join(', ');
      log.warn(`job ${journal.jobId}: its journal in ${where} predates records of how the chain was active before the job; its volumes are left as this run found them (${found})`);
    }
  }

  /** How to leave an LV of the chain when this run ends (see stateToLeave), and why, when that is not how this run found it. */
  toLeave(volume: FoundActivation): { state: LocalActivation; why?: string } {
    const recorded = recordedBefore(this.record, volume.vg, volume.lv);
    const state = stateToLeave(volume.before, recorded);
    if (state === volume.before) return { state };
    return { state, why: `the job's journal records it ${recorded ?? '?'} on this host before the job; an earlier run of the job left it ${volume.before}` };
  }
}
