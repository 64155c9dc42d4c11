// What is going on with a chain, read without changing anything or taking its lock: mark, lock holder, unfinished job.
import { asVolmergeError } from '../errors.js';
import { MERGE_STEPS } from '../merge/steps.js';
import { markHolderFor, readMark, type MidMergeMark } from '../storage/marks.js';
import { resolveVolume } from '../storage/volume.js';
import { readLockHolder } from './chain-lock.js';
import { firstUnfinishedStep, jobsDir, scanJournals, type Journal } from './journal.js';
import { sharedChainOf } from './shared-chain.js';
import { sharedChainStatus } from './shared-chain-status.js';
import { findUnfinishedJob } from './unfinished.js';

/** The status of a chain as `volmerge status --json` prints it (schemas/status.schema.json). */
export interface ChainStatus {
  base: string;
  identity: string;
  state: 'idle' | 'merging' | 'unfinished' | 'needs-attention';
  mark: MidMergeMark | null;
  lock: { pid: number; jobId: string; since: string } | null;
  job: {
    jobId: string;
    state: Journal['state'];
    top: string;
    base: string;
    attempt: number;
    nextStep: string;
    steps: { name: string; status: 'pending' | 'started' | 'done' | 'failed' }[];
    error?: { code: string; message: string };
  } | null;
  problem: string | null;
  advice: string;
}

function jobSummary(journal: Journal): NonNullable<ChainStatus['job']> {
  return {
    jobId: journal.jobId,
    state: journal.state,
    top: journal.request.top,
    base: journal.request.base,
    attempt: journal.attempt,
    nextStep: firstUnfinishedStep(journal) ?? 'end',
    steps: MERGE_STEPS.map((name) => ({ name, status: journal.steps[name]?.status ?? 'pending' })),
    ...(journal.error ? { error: journal.error } : {}),
  };
}

/** Reads the status of the chain whose base is at basePath; throws only when base itself cannot be resolved. */
export async function chainStatus(basePath: string, stateDir: string): Promise<ChainStatus> {
  // On a shared VG the journal is in a job LV, not here, and base may be inactive on this host.
  const shared = await sharedChainOf('', basePath);
  if (shared) return sharedChainStatus(basePath, shared);
  const base = await resolveVolume(basePath, 'base');
  const status: ChainStatus = { base: basePath, identity: base.identity, state: 'idle', mark: null, lock: null, job: null, problem: null, advice: '' };
  const problems: string[] = [];
  try {
    status.mark = (await readMark(markHolderFor(base, stateDir))) ?? null;
  } catch (error) {
    problems.push(`the mark cannot be read: ${asVolmergeError(error).message}`);
  }
  const holder = await readLockHolder(base.identity);
  if (holder) status.lock = { pid: holder.pid, jobId: holder.jobId, since: holder.since };
  try {
    const unfinished = await findUnfinishedJob(stateDir, base.identity);
    if (unfinished) status.job = jobSummary(unfinished.journal);
  } catch (error) {
    problems.push(asVolmergeError(error).message);
  }
  if (status.mark && !status.job) {
    const broken = (await scanJournals(stateDir).catch(() => [])).find((entry) => entry.folder === status.mark?.jobId && 'error' in entry);
    problems.push(
      broken && 'error' in broken
        ? broken.error.message
        : `base is marked mid-merge by job ${status.mark.jobId} but ${jobsDir(stateDir)} holds no unfinished journal of it` +
            (status.mark.stateDir && status.mark.stateDir !== stateDir ? ` (its journal may be in ${status.mark.stateDir})` : ''),
    );
  }
  if (status.lock) {
    status.state = 'merging';
    status.advice = `job ${status.lock.jobId} (pid ${status.lock.pid}) is merging this chain; wait for it to end`;
  } else if (problems.length > 0) {
    status.state = 'needs-attention';
    status.problem = problems.join('; ');
    status.advice = 'base may hold part of a merge: see "Crash safety" in the README before using or merging it';
  } else if (status.job) {
    status.state = 'unfinished';
    status.advice = `run volmerge merge --top ${status.job.top} --base ${basePath} to finish it from step ${status.job.nextStep}`;
  } else {
    status.advice = 'no merge of this chain is running or unfinished';
  }
  return status;
}
