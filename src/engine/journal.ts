// The write-ahead journal of a job: its request and plan, each step's record, where the bitmap backup is. Checked
// against schemas/journal.schema.json whenever it is written or read; what a record means is read through a table's shape.
import { VolmergeError } from '../errors.js';
import type { LibvirtRecord } from '../libvirt/record.js';
import type { LiveBitmapPlan } from '../live/bitmap-plan.js';
import type { MergePlan } from '../merge/plan.js';
import type { MergeRequest } from '../merge/request.js';
import { describeErrors, validatorFor } from '../schema.js';
import type { LocalActivation } from '../storage/shared-vg.js';
import type { VolumeKind } from '../storage/volume.js';
import type { TableShape } from './step.js';

/** The schema every journal is checked against, on write and on read. */
export const JOURNAL_SCHEMA = 'journal.schema.json';

/** A job's life as its journal records it: running (or interrupted by a crash), done, or failed. */
export type JournalState = 'running' | 'done' | 'failed';

/** One step's record: written as started before the step acts, as done (with what it found) after. */
export interface StepRecord {
  status: 'started' | 'done' | 'failed';
  startedAt: string;
  endedAt?: string;
  facts?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** A volume as the journal remembers it, to find it again and to tell whether it is still the same one. */
export interface JournalVolume {
  /** The path as given, made absolute: what later runs open (for an LV, /dev/VG/LV, which outlives a reboot). */
  path: string;
  /** Where it resolved to when the job began (for messages; /dev/dm-N may change). */
  realPath: string;
  identity: string;
  kind: VolumeKind;
  lv?: { vg: string; name: string };
}

/** One bitmap kept in a backup image. */
export interface BackedUpBitmap {
  name: string;
  granularity: number;
  enabled: boolean;
}

/** A backup image and the bitmaps it holds. */
export interface BackupImage {
  image: string;
  bitmaps: BackedUpBitmap[];
}

/** Where a live merge's chain sits in the VM: node names, so that a later run finishes the job after the pivot too (top is out of the chain then). */
export interface LiveJournalChain {
  active: boolean;
  topFormat: string;
  topStorage: string;
  baseFormat: string;
  baseStorage: string;
  root: string;
  device: string;
  /** The overlay above top (internal merge). */
  above?: { format: string; storagePath: string };
}

/** What a live merge keeps beyond a cold one: qemu's job id (kept across takeovers) and the bitmap plan made from QMP's view. */
export interface LiveJournal {
  qemuJob: string;
  bitmaps: LiveBitmapPlan;
  chain: LiveJournalChain;
}

/** How a shared VG's chain was active on one boot of one host before the job first activated it there. */
export interface ActivationRecord {
  /** /proc/sys/kernel/random/boot_id of that boot: a record only describes the boot that wrote it. */
  bootId: string;
  /** The host's name, for people reading the journal. */
  host: string;
  volumes: { vg: string; lv: string; before: LocalActivation }[];
}

/** What a live merge through libvirt keeps (src/libvirt/record.ts). */
export type LibvirtJournal = LibvirtRecord;

/** The journal of one merge job. */
export interface Journal {
  version: 1;
  jobId: string;
  /** Which step table runs the job: 'cold' (qemu-img; also when absent, in journals older than live merges) or 'live' (a VM's block-commit). */
  kind?: 'cold' | 'live' | 'libvirt';
  /** A live merge's own record. */
  live?: LiveJournal;
  /** A live merge through libvirt's own record. */
  libvirt?: LibvirtJournal;
  state: JournalState;
  createdAt: string;
  updatedAt: string;
  /** How many runs of this job have started (a resume adds one). */
  attempt: number;
  /** The process that last ran the job. */
  pid?: number;
  /** The request as made (paths absolute). */
  request: MergeRequest & { leafRoom: number };
  volumes: { top: JournalVolume; base: JournalVolume };
  plan: MergePlan;
  /** Copies of top's bitmaps and of the base bitmaps they merge into, taken by the backup step. */
  backup?: { top: BackupImage; base: BackupImage };
  steps: Partial<Record<string, StepRecord>>;
  error?: { code: string; message: string };
  /** The job whose journal (and folder) this one took over. */
  resumedFrom?: string;
  /** Shared VGs: how base, top (and child) were active on each host before the job first activated them there; absent in older journals. */
  activationBefore?: ActivationRecord[];
}

const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Whether a name can be a job id (and so a folder's name). */
export function isJobId(name: string): boolean {
  return JOB_ID_PATTERN.test(name);
}

/** Refuses a job id that cannot safely name a folder. */
export function assertJobId(jobId: string): void {
  if (!isJobId(jobId)) {
    throw new VolmergeError('usage', `job id "${jobId.slice(0, 60)}" is not usable: letters, digits, '.', '_' and '-' only, at most 128, not starting with '.' or '-'`);
  }
}

/** The current time as the journal writes it. */
export function now(): string {
  return new Date().toISOString();
}

/** Checks a journal against the schema; throws 'needs-attention' naming where it is otherwise. */
export function checkJournal(data: unknown, where: string): Journal {
  const validate = validatorFor<Journal>(JOURNAL_SCHEMA);
  if (!validate(data)) {
    throw new VolmergeError('needs-attention', `journal ${where} does not match ${JOURNAL_SCHEMA} (${describeErrors(validate.errors)}); the job needs attention: inspect or move it away`);
  }
  return data;
}

/** Parses and checks a journal's text; 'needs-attention' naming where it is when it is not valid JSON or not a journal. */
export function parseJournal(text: string, where: string): Journal {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new VolmergeError('needs-attention', `journal ${where} is not valid JSON (${text.length} bytes); the job needs attention: inspect or move it away`);
  }
  return checkJournal(data, where);
}

/** Steps that started but did not finish (crashed or failed): what recovery must probe. */
export function interruptedSteps(journal: Journal, shape: TableShape): string[] {
  return shape.steps.filter((step) => {
    const status = journal.steps[step]?.status;
    return status === 'started' || status === 'failed';
  });
}

/** The first step not recorded as done, or undefined when every step is done. */
export function firstUnfinishedStep(journal: Journal, shape: TableShape): string | undefined {
  return shape.steps.find((step) => journal.steps[step]?.status !== 'done');
}

/** Whether the job reached the point after which the chain can only be finished forward (base may be marked). */
export function pastPointOfNoReturn(journal: Journal, shape: TableShape): boolean {
  return shape.pointOfNoReturn !== undefined && journal.steps[shape.pointOfNoReturn] !== undefined;
}

/** Whether the chain still needs this job's journal: base may hold part of top, or a step that writes bitmaps was cut short. */
export function needsRecovery(journal: Journal, shape: TableShape): boolean {
  return pastPointOfNoReturn(journal, shape) || interruptedSteps(journal, shape).some((step) => shape.bitmapWriting.includes(step));
}

/** Whether a journal describes a merge that is not finished and whose chain still needs us (running, or failed part-way). */
export function isUnfinished(journal: Journal, shape: TableShape): boolean {
  return journal.state === 'running' || (journal.state === 'failed' && needsRecovery(journal, shape));
}
