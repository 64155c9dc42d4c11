// The facts `volmerge status` decides from, read through the chain's job store without changing anything: on this host
// the journals are read; on a shared VG only LVM's metadata (mark tag, job LVs), since another host may hold them.
import { HostJobStore } from '../engine/host-store.js';
import { SharedVgJobStore } from '../engine/shared-vg-store.js';
import type { JobStore } from '../engine/store.js';
import { asVolmergeError } from '../errors.js';
import { markHolderFor, readMark, type MarkHolder, type MidMergeMark } from '../storage/marks.js';
import { resolveVolume } from '../storage/volume.js';
import { readLockHolder } from './chain-lock.js';
import { sharedChainOf } from './shared-chain.js';
import { decideStatus, type ChainStatus, type StatusFacts } from './status.js';
import { findUnfinishedJob } from './unfinished.js';

/** The mark of base, or why it cannot be read (added to problems). */
async function markOf(holder: MarkHolder, problems: string[]): Promise<MidMergeMark | null> {
  try {
    return (await readMark(holder)) ?? null;
  } catch (error) {
    problems.push(`the mark cannot be read: ${asVolmergeError(error).message}`);
    return null;
  }
}

/** The facts every store gives the same way: mark, this host's chain lock. */
async function commonFacts(base: string, identity: string, holder: MarkHolder, store: JobStore, shared: boolean): Promise<StatusFacts> {
  const problems: string[] = [];
  const mark = await markOf(holder, problems);
  const lockHolder = await readLockHolder(identity);
  return {
    base,
    identity,
    mark,
    lock: lockHolder ? { pid: lockHolder.pid, jobId: lockHolder.jobId, since: lockHolder.since } : null,
    journal: null,
    unreadJobs: [],
    problems,
    storeDescription: store.describe(),
    shared,
    ...(mark?.stateDir && mark.stateDir !== store.stateDir ? { markStateDir: mark.stateDir } : {}),
  };
}

/** Reads the status of the chain whose base is at basePath; throws only when base itself cannot be resolved. */
export async function chainStatus(basePath: string, stateDir: string): Promise<ChainStatus> {
  // On a shared VG the journal is in a job LV, not here, and base may be inactive on this host.
  const shared = await sharedChainOf('', basePath);
  if (shared) {
    const store = new SharedVgJobStore(shared.vg, shared.base.lv, stateDir);
    const facts = await commonFacts(basePath, shared.baseIdentity, { kind: 'lv', vg: shared.vg, lv: shared.base.lv }, store, true);
    try {
      facts.unreadJobs = (await store.keys()).map((key) => `${shared.vg}/${key}`);
    } catch (error) {
      facts.problems.push(`the job LVs cannot be listed: ${asVolmergeError(error).message}`);
    }
    return decideStatus(facts);
  }
  const base = await resolveVolume(basePath, 'base');
  const store = new HostJobStore(stateDir);
  const facts = await commonFacts(basePath, base.identity, markHolderFor(base, stateDir), store, false);
  try {
    facts.journal = (await findUnfinishedJob(store, base.identity))?.journal ?? null;
  } catch (error) {
    facts.problems.push(asVolmergeError(error).message);
  }
  if (facts.mark && !facts.journal) {
    // The marked job's journal may be there but unreadable: that is the problem to name.
    const broken = (await store.list().catch(() => [])).find((entry) => entry.key === facts.mark?.jobId && 'error' in entry);
    if (broken && 'error' in broken) facts.markProblem = broken.error.message;
  }
  return decideStatus(facts);
}
