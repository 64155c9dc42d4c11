// `volmerge clear-stale`: removes a stale job's journal (its base is gone, or is another volume now) and the marks the
// job left on volumes that are gone. It is judged again under the chain lock of the volume the journal names, and a
// journal that is not stale, or whose state cannot be told, is refused. In this host's state folder the journal's folder
// is first renamed out of sight (jobs/.cleared-ID, the point after which it is gone for every reader), then the marks
// are taken off and the folder deleted: a kill anywhere leaves the journal whole, or a .cleared- folder that the same
// command finishes. A shared VG's job LV goes in one lvremove.
import { lstat, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crashPoint, signalPoint } from '../engine/crash-point.js';
import { HostJobStore, jobsDir, JOURNAL_FILE } from '../engine/host-store.js';
import { parseJournal, type Journal } from '../engine/journal.js';
import { JOB_LV_PREFIX, SharedVgJobStore } from '../engine/shared-vg-store.js';
import type { JobStore } from '../engine/store.js';
import { probeVolume } from '../engine/volume-probe.js';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { removeDurable, syncDir } from '../os/atomic-file.js';
import { clearMark, describeMarkHolder, markHolderFor, readMark } from '../storage/marks.js';
import { acquireChainLock } from './chain-lock.js';
import { sharedChainOf } from './shared-chain.js';
import { probeJournalBase, staleText } from './stale.js';

/** What to clear: a job id (or a shared VG's job LV name), in the store of base (a shared VG's) or of the state folder. */
export interface ClearStaleRequest {
  job: string;
  base?: string;
  stateDir: string;
  /** Aborts before the journal is moved away; after that the clear is finished whatever happens. */
  signal?: AbortSignal;
}

/** What was cleared. */
export interface ClearedJob {
  jobId: string;
  /** Where the journal was. */
  where: string;
  reason: string;
  /** The marks taken off (sidecars, state-folder files). */
  marks: string[];
  /** Marks of the job left in place, and why. */
  kept: string[];
  /** Set when an earlier run was cut short after the journal was moved away, and this run finished it. */
  finishedEarlierRun?: true;
}

function trashPath(stateDir: string, key: string): string {
  return join(jobsDir(stateDir), `.cleared-${key}`);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Takes off the marks this job left on its volumes, where the volume is gone or is another one now; returns what it did. */
async function clearJobMarks(journal: Journal, stateDir: string): Promise<{ marks: string[]; kept: string[] }> {
  const done = { marks: [] as string[], kept: [] as string[] };
  const ours = new Set([journal.jobId, ...(journal.resumedFrom ? [journal.resumedFrom] : [])]);
  for (const [role, kind] of [['base', 'merging'], ['top', 'retired']] as const) {
    const volume = journal.volumes[role];
    // An LV's tags go with it: an LV made again carries none of ours.
    if (volume.kind === 'lv') continue;
    const holder = markHolderFor(volume, stateDir, kind);
    const mark = await readMark(holder).catch(() => undefined);
    if (!mark || !ours.has(mark.jobId)) continue;
    const probe = role === 'base' ? { state: 'gone' as const } : await probeVolume(volume, journal.createdAt);
    if (probe.state !== 'gone') {
      done.kept.push(`${describeMarkHolder(holder)}: top ${volume.path} is still there, and retired`);
      continue;
    }
    await clearMark(holder);
    done.marks.push(describeMarkHolder(holder));
  }
  return done;
}

/** Finishes a clear of this host's state folder from the journal moved out of sight: marks, then the folder. */
async function finishHostClear(stateDir: string, key: string, journal: Journal): Promise<Pick<ClearedJob, 'marks' | 'kept'>> {
  await signalPoint('clear-marks', 'before');
  crashPoint('clear-marks', 'before');
  const marks = await clearJobMarks(journal, stateDir);
  crashPoint('clear-marks', 'after');
  await removeDurable(trashPath(stateDir, key));
  return marks;
}

/** The store the job is in: a shared VG's job LVs when base is an LV of one, else this host's state folder. */
async function storeOf(request: ClearStaleRequest): Promise<JobStore> {
  const shared = request.base ? await sharedChainOf('', request.base) : undefined;
  return shared ? new SharedVgJobStore(shared.vg, shared.base.lv, request.stateDir) : new HostJobStore(request.stateDir);
}

/** Reads the job's journal; refuses a missing or unreadable one (whether it is stale cannot be told then). */
async function readStale(store: JobStore, key: string, job: string): Promise<Journal> {
  const entry = await store.read(key);
  if (!entry) throw new VolmergeError('no-such-job', `no job ${job} in ${store.describe()} (cleared already, or never there); nothing was changed`);
  if ('error' in entry) {
    throw new VolmergeError('needs-attention', `${entry.error.message}; volmerge cannot tell whether job ${job} is stale, so it was not cleared: inspect ${entry.where}`);
  }
  return entry.journal;
}

/** Refuses a journal that is not stale, or whose base cannot be looked at; returns why it is stale. */
async function judge(journal: Journal): Promise<string> {
  const probe = await probeJournalBase(journal);
  if (probe.state === 'gone') return staleText(journal, probe);
  const { top, base } = journal.request;
  if (probe.state === 'unknown') {
    throw new VolmergeError('needs-attention', `job ${journal.jobId}: whether its base ${base} is still the volume it merged cannot be told (${probe.reason}); nothing was cleared`);
  }
  throw new VolmergeError(
    'not-stale',
    `job ${journal.jobId} is not stale: its base ${base} is the volume it began merging, and may hold part of a merge; nothing was cleared; ` +
      `finish it: volmerge merge --top ${top} --base ${base}${journal.request.qmp ? ` --qmp ${journal.request.qmp}` : ''}`,
  );
}

/** Clears a stale job (see the file's head); refuses one that is not stale, and changes nothing then. */
export async function clearStaleJob(request: ClearStaleRequest): Promise<ClearedJob> {
  const store = await storeOf(request);
  try {
    const key = store.kind === 'shared-vg' && request.job.startsWith(JOB_LV_PREFIX) ? request.job : store.keyFor(request.job);
    const trash = trashPath(request.stateDir, key);
    if (store.kind === 'host' && !(await exists(join(jobsDir(request.stateDir), key))) && (await exists(trash))) {
      // Its folder's name is no job id any more: parsed as it is, not as a job folder's journal.
      const journal = await readFile(join(trash, JOURNAL_FILE), 'utf8')
        .then((text) => parseJournal(text, join(trash, JOURNAL_FILE)))
        .catch(() => undefined);
      const marks = journal ? await finishHostClear(request.stateDir, key, journal) : (await removeDurable(trash), { marks: [], kept: [] });
      log.info(`job ${request.job}: an earlier clear was cut short after its journal was moved away; finished`);
      return { jobId: journal?.jobId ?? request.job, where: trash, reason: 'cleared by an earlier run that was cut short', ...marks, finishedEarlierRun: true };
    }
    const first = await readStale(store, key, request.job);
    const lock = await acquireChainLock(first.volumes.base.identity, { jobId: `clear-stale-${process.pid}`, base: first.volumes.base.path });
    try {
      // Judged again under the lock: a merge of the volume that has the journal's device or name now cannot run meanwhile.
      const journal = await readStale(store, key, request.job);
      const reason = await judge(journal);
      await signalPoint('clear-journal', 'before');
      crashPoint('clear-journal', 'before');
      if (request.signal?.aborted) throw new VolmergeError('aborted', `job ${journal.jobId}: interrupted before anything was cleared; nothing was changed`);
      const where = store.locationOf(key);
      if (store.kind !== 'host') {
        await store.remove(key);
        return { jobId: journal.jobId, where, reason, marks: [], kept: [] };
      }
      // The point after which the journal is gone for every reader: a folder whose name is not a job id.
      await rename(join(jobsDir(request.stateDir), key), trash);
      await syncDir(jobsDir(request.stateDir));
      return { jobId: journal.jobId, where, reason, ...(await finishHostClear(request.stateDir, key, journal)) };
    } finally {
      await lock.release();
    }
  } finally {
    await store.close();
  }
}
