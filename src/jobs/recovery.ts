// Agent start-up recovery, through a job store: every journal left running is probed; its job is resumed, ended
// (volume gone), retried later (a query failed, which never means gone), or flagged as needing attention (unreadable).
// A job that waits ends when its journal vanishes or another run ends it (see recovery-ended.ts), never stays pending.
import { toJobStore } from '../engine/journal-writer.js';
import type { Journal } from '../engine/journal.js';
import type { JobStore, StoredJournal } from '../engine/store.js';
import { asVolmergeError, type VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { decideOrWait, describe, type Decision, type RecoveredJob, type RecoveryOptions } from './recovery-decide.js';
import { endedElsewhereOutcome, generationWhileUnfinished, vanishedOutcome } from './recovery-ended.js';

export { requestOf, type RecoveredJob, type RecoveryOptions, type ResumableJob } from './recovery-decide.js';

/** The journals of a store that this host can take; a job LV that another host holds is that host's job, left to it. */
async function takeableJournals(store: JobStore): Promise<StoredJournal[]> {
  const found: StoredJournal[] = [];
  for (const key of await store.keys()) {
    let entry: StoredJournal | undefined;
    try {
      entry = await store.read(key);
    } catch (error) {
      const wrapped = asVolmergeError(error);
      if (wrapped.code === 'locked-by-other-host') {
        log.info(`recovery: ${store.locationOf(key)} is held by another host: its job runs there; left alone`);
        continue;
      }
      entry = { key, where: store.locationOf(key), error: wrapped };
    }
    if (entry) found.push(entry);
  }
  return found;
}

/** Where recovery finds jobs: a state folder (this host's store), a store, or a way to open one (each retry then opens its own). */
export type RecoverySource = JobStore | string | (() => JobStore);

function opener(where: RecoverySource): () => JobStore {
  if (typeof where === 'function') return where;
  const store = toJobStore(where);
  return () => store;
}

/** Hands a decision on: the job to options.resume (the store that read it is closed by then), its state to options.onUpdate. */
function report(decision: Decision, options: RecoveryOptions): void {
  if (decision.resumable) options.resume(decision.resumable);
  const { outcome } = decision;
  log.info(`recovery: job ${outcome.jobId}: ${outcome.state}${outcome.error ? ` (${outcome.error.message})` : ''}${outcome.note ? ` (${outcome.note})` : ''}`);
  options.onUpdate?.(outcome);
}

/** A job that waits: its key, its journal as last read, base's generation while that journal was there, whether a probe found it gone. */
interface Waiting {
  key: string;
  last: Journal;
  generation?: number;
  seenGone?: boolean;
}

function waitingOn(waiting: Waiting, error: VolmergeError, why: string): Decision {
  return { outcome: { jobId: waiting.last.jobId, state: 'waiting', ...describe(waiting.last), error: { code: error.code, message: `${why}: ${error.message}; retrying later` } } };
}

/**
 * Probes a waiting job again through a store opened for that probe: its journal vanished (a successful listing of the
 * store lacks it), ended by another run, unreadable, held by another host (which runs it now: it waits), or there and
 * running (probed as in the first pass).
 */
async function probeAgain(store: JobStore, waiting: Waiting, options: RecoveryOptions): Promise<Decision> {
  const where = store.locationOf(waiting.key);
  let keys: string[];
  try {
    keys = await store.keys();
  } catch (error) {
    return waitingOn(waiting, asVolmergeError(error), `${store.describe()} cannot be listed`);
  }
  let entry: StoredJournal | undefined;
  if (keys.includes(waiting.key)) {
    try {
      entry = await store.read(waiting.key);
    } catch (error) {
      return waitingOn(waiting, asVolmergeError(error), `${where} cannot be read now`);
    }
  }
  if (!entry) return vanished(waiting, where);
  if ('error' in entry) {
    if (entry.error.code !== 'needs-attention') return waitingOn(waiting, entry.error, `${where} cannot be read now`);
    return { outcome: { jobId: waiting.last.jobId, state: 'needs-attention', ...describe(waiting.last), error: { code: 'needs-attention', message: entry.error.message } } };
  }
  waiting.last = entry.journal;
  if (entry.journal.state !== 'running') return { outcome: endedElsewhereOutcome(entry.journal, where) };
  const decision = await decideOrWait(store, waiting.key, entry.journal, options);
  if (decision?.outcome.state === 'waiting') waiting.generation ??= await generationWhileUnfinished(entry.journal);
  return decision ?? { outcome: { jobId: entry.journal.jobId, state: 'waiting', ...describe(entry.journal), error: { code: 'busy', message: `job ${entry.journal.jobId} is being run by pid ${entry.journal.pid} on this host; retrying later` } } };
}

/**
 * The end of a job whose journal is gone. An agent that finished the merge elsewhere removes the journal a moment
 * before it moves base's generation: a job that nothing shows finished is confirmed gone at the next probe before it fails.
 */
async function vanished(waiting: Waiting, where: string): Promise<Decision> {
  const outcome = await vanishedOutcome(waiting.last, where, waiting.generation);
  if (outcome.state !== 'failed' || waiting.seenGone) return { outcome };
  waiting.seenGone = true;
  return { outcome: { ...outcome, state: 'waiting', error: { code: 'job-gone', message: `${where} is gone; whether another run finished the merge is checked once more at the next probe` } } };
}

/** Probes a waiting job again after the delay, through a store opened for that probe alone, until it has been resumed or has ended. */
function retryLater(open: () => JobStore, waiting: Waiting, options: RecoveryOptions): void {
  const delay = options.retryDelayMs ?? 30_000;
  const cancel = (): void => clearTimeout(timer);
  const timer = setTimeout(() => {
    options.signal?.removeEventListener('abort', cancel);
    void (async () => {
      if (options.signal?.aborted) return;
      const store = open();
      let decision: Decision;
      try {
        decision = await probeAgain(store, waiting, options).catch((error: unknown) => waitingOn(waiting, asVolmergeError(error), 'probe failed'));
      } finally {
        await store.close();
      }
      if (options.signal?.aborted) return;
      report(decision, options);
      if (decision.outcome.state === 'waiting') retryLater(open, waiting, options);
    })();
  }, delay);
  timer.unref();
  options.signal?.addEventListener('abort', cancel, { once: true });
}

/**
 * Recovers the jobs of a store (a state folder given as a path is this host's) at agent start: each journal left
 * running is resumed (through options.resume), ended as 'volume-deleted' when a successful query says a volume is
 * gone, or retried later when a query failed; an unreadable journal makes that job 'needs-attention' and the others
 * go on; a job whose state another host holds (a shared VG's job LV) is left to that host. The store is closed (what
 * it activated put back) before any job is handed to options.resume. Resolves with the first pass's findings.
 */
export async function recoverJobs(where: RecoverySource, options: RecoveryOptions): Promise<RecoveredJob[]> {
  const open = opener(where);
  const store = open();
  const decisions: { decision: Decision; waiting?: Waiting }[] = [];
  try {
    for (const entry of await takeableJournals(store)) {
      if ('error' in entry) {
        decisions.push({ decision: { outcome: { jobId: entry.key, state: 'needs-attention', error: { code: 'needs-attention', message: entry.error.message } } } });
      } else if (entry.journal.state === 'running') {
        const decision = await decideOrWait(store, entry.key, entry.journal, options);
        if (!decision) continue;
        // Read while this store holds the journal (a shared VG's job LV is held here): no run can finish the merge meanwhile.
        const waiting = decision.outcome.state === 'waiting' ? { key: entry.key, last: entry.journal, generation: await generationWhileUnfinished(entry.journal) } : undefined;
        decisions.push({ decision, ...(waiting ? { waiting } : {}) });
      }
    }
  } finally {
    await store.close();
  }
  for (const { decision, waiting } of decisions) {
    report(decision, options);
    if (waiting) retryLater(open, waiting, options);
  }
  return decisions.map((d) => d.decision.outcome);
}
