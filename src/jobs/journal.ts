// The per-job write-ahead journal: STATE_DIR/jobs/JOB_ID/journal.json, written atomically, schema-checked when read.
import { lstat, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VolmergeError } from '../errors.js';
import type { MergePlan } from '../merge/plan.js';
import { BITMAP_WRITING_STEPS, MERGE_STEPS, POINT_OF_NO_RETURN, type MergeStep } from '../merge/steps.js';
import { describeErrors, validatorFor } from '../schema.js';
import type { VolumeKind } from '../storage/volume.js';
import { mkdirDurable, writeFileAtomic } from './atomic-file.js';
import { toJobStore, type JobStore } from './job-store.js';

/** The schema every journal is checked against, on write and on read. */
export const JOURNAL_SCHEMA = 'journal.schema.json';
/** The journal's file name inside its job folder. */
export const JOURNAL_FILE = 'journal.json';

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

/** The journal of one merge job. */
export interface Journal {
  version: 1;
  jobId: string;
  state: JournalState;
  createdAt: string;
  updatedAt: string;
  /** How many runs of this job have started (a resume adds one). */
  attempt: number;
  /** The process that last ran the job. */
  pid?: number;
  request: { top: string; base: string; leafRoom: number; rateLimit?: number; dropBitmaps?: boolean };
  volumes: { top: JournalVolume; base: JournalVolume };
  plan: MergePlan;
  /** Copies of top's bitmaps and of the base bitmaps they merge into, taken by the backup step. */
  backup?: { top: BackupImage; base: BackupImage };
  steps: Partial<Record<MergeStep, StepRecord>>;
  error?: { code: string; message: string };
  /** The job whose journal (and folder) this one took over. */
  resumedFrom?: string;
}

const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Refuses a job id that cannot safely name a folder. */
export function assertJobId(jobId: string): void {
  if (!JOB_ID_PATTERN.test(jobId)) {
    throw new VolmergeError('usage', `job id "${jobId.slice(0, 60)}" is not usable: letters, digits, '.', '_' and '-' only, at most 128, not starting with '.' or '-'`);
  }
}

/** The folder that holds every job's folder. */
export function jobsDir(stateDir: string): string {
  return join(stateDir, 'jobs');
}

/** The folder of one job: its journal and its bitmap backups. */
export function jobDir(stateDir: string, jobId: string): string {
  assertJobId(jobId);
  return join(jobsDir(stateDir), jobId);
}

/** The journal file of one job. */
export function journalPath(stateDir: string, jobId: string): string {
  return join(jobDir(stateDir, jobId), JOURNAL_FILE);
}

/** The current time as the journal writes it. */
export function now(): string {
  return new Date().toISOString();
}

/** Checks a journal against the schema; throws 'needs-attention' naming the file otherwise. */
export function checkJournal(data: unknown, path: string): Journal {
  const validate = validatorFor<Journal>(JOURNAL_SCHEMA);
  if (!validate(data)) {
    throw new VolmergeError('needs-attention', `journal ${path} does not match ${JOURNAL_SCHEMA} (${describeErrors(validate.errors)}); the job needs attention: inspect or move the file away`);
  }
  return data;
}

/** Reads and checks one journal; an unreadable, unparsable or invalid one is a 'needs-attention' error naming the file. */
export async function readJournal(path: string): Promise<Journal> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new VolmergeError('needs-attention', `journal ${path} cannot be read (${(error as Error).message}); the job needs attention`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new VolmergeError('needs-attention', `journal ${path} is not valid JSON (${text.length} bytes); the job needs attention: inspect or move the file away`);
  }
  const journal = checkJournal(data, path);
  const folder = basename(dirname(path));
  // A job that took over another's journal is written into the old folder first, then the folder is renamed.
  if (folder !== journal.jobId && folder !== journal.resumedFrom) {
    throw new VolmergeError('needs-attention', `journal ${path} names job ${journal.jobId}, not the folder's ${folder}; the job needs attention`);
  }
  return journal;
}

/** Validates and writes a journal atomically (temp file, fsync, rename, fsync the folder), into its job's folder or the one given. */
export async function writeJournal(stateDir: string, journal: Journal, folder = journal.jobId): Promise<void> {
  const path = journalPath(stateDir, folder);
  checkJournal(journal, path);
  await mkdirDurable(jobDir(stateDir, folder));
  await writeFileAtomic(path, `${JSON.stringify(journal, null, 2)}\n`);
}

/** A journal found in the state folder (folder: the job folder's name, which is the job id but mid-takeover), or why it could not be read. */
export type ScannedJournal = { folder: string; path: string; journal: Journal } | { folder: string; path: string; error: VolmergeError };

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Reads every job's journal under the state folder; unreadable ones are listed with their error, not thrown. */
export async function scanJournals(stateDir: string): Promise<ScannedJournal[]> {
  let names: string[];
  try {
    names = await readdir(jobsDir(stateDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new VolmergeError('needs-attention', `cannot list the jobs in ${jobsDir(stateDir)}: ${(error as Error).message}`);
  }
  const found: ScannedJournal[] = [];
  for (const folder of names.sort()) {
    if (!JOB_ID_PATTERN.test(folder)) continue;
    const path = join(jobsDir(stateDir), folder, JOURNAL_FILE);
    // A folder without a journal is a job that never got to write one (or one being deleted): nothing to recover.
    if (!(await exists(path))) continue;
    try {
      found.push({ folder, path, journal: await readJournal(path) });
    } catch (error) {
      if (error instanceof VolmergeError) found.push({ folder, path, error });
      else throw error;
    }
  }
  return found;
}

/** Steps that started but did not finish (crashed or failed): what recovery must probe. */
export function interruptedSteps(journal: Journal): MergeStep[] {
  return MERGE_STEPS.filter((step) => {
    const status = journal.steps[step]?.status;
    return status === 'started' || status === 'failed';
  });
}

/** The first step not recorded as done, or undefined when every step is done. */
export function firstUnfinishedStep(journal: Journal): MergeStep | undefined {
  return MERGE_STEPS.find((step) => journal.steps[step]?.status !== 'done');
}

/** Whether the job reached the point after which the chain can only be finished forward (base may be marked). */
export function pastPointOfNoReturn(journal: Journal): boolean {
  return journal.steps[POINT_OF_NO_RETURN] !== undefined;
}

/** Whether the chain still needs this job's journal: base may hold part of top, or a step that writes bitmaps was cut short. */
export function needsRecovery(journal: Journal): boolean {
  return pastPointOfNoReturn(journal) || interruptedSteps(journal).some((step) => BITMAP_WRITING_STEPS.includes(step));
}

/** Whether a journal describes a merge that is not finished and whose chain still needs us (running, or failed part-way). */
export function isUnfinished(journal: Journal): boolean {
  return journal.state === 'running' || (journal.state === 'failed' && needsRecovery(journal));
}

/** A journal that one run keeps up to date: each change is written durably before the call returns. */
export class JournalWriter {
  /** Where the journal is kept (a state folder given as a path is this host's store). */
  readonly store: JobStore;
  /** The job's key in the store (its folder or LV): from its id, except for a journal caught mid-takeover. */
  readonly folder: string;

  constructor(
    store: JobStore | string,
    private current: Journal,
    folder?: string,
  ) {
    this.store = toJobStore(store);
    this.folder = folder ?? this.store.keyFor(current.jobId);
  }

  /** This host's state folder. */
  get stateDir(): string {
    return this.store.stateDir;
  }

  /** The journal as last written. */
  get journal(): Journal {
    return this.current;
  }

  /** Applies a change, stamps updatedAt and writes the whole journal atomically. */
  async update(change: (journal: Journal) => void): Promise<void> {
    const next = structuredClone(this.current);
    change(next);
    next.updatedAt = now();
    await this.store.write(next, this.folder);
    this.current = next;
  }

  /** Records that a step starts (before it acts). */
  async started(step: MergeStep): Promise<void> {
    await this.update((j) => {
      j.steps[step] = { status: 'started', startedAt: now() };
    });
  }

  /** Records that a step is done, with what it found. */
  async done(step: MergeStep, facts: Record<string, unknown>): Promise<void> {
    await this.update((j) => {
      const record = j.steps[step];
      j.steps[step] = { status: 'done', startedAt: record?.startedAt ?? now(), endedAt: now(), facts };
    });
  }

  /** Applies a change in memory only: the next update() writes it along with its own. */
  stage(change: (journal: Journal) => void): void {
    const next = structuredClone(this.current);
    change(next);
    this.current = next;
  }

  /** Records a step as done in memory only: the next update() writes it (see StepHooks.doneQuietly). */
  doneQuietly(step: MergeStep, facts: Record<string, unknown>): void {
    const at = now();
    this.stage((j) => {
      j.steps[step] = { status: 'done', startedAt: at, endedAt: at, facts };
    });
  }

  /** Whether a step is recorded as done. */
  isDone(step: MergeStep): boolean {
    return this.current.steps[step]?.status === 'done';
  }
}
