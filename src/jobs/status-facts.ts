// The facts `volmerge status` decides from, read through the chain's job store without changing anything: on this host
// the journals are read; on a shared VG only LVM's metadata (mark tag, job LVs), since another host may hold them.
import { resolve as resolvePath } from 'node:path';
import { HostJobStore } from '../engine/host-store.js';
import { JOB_BASE_UUID_TAG_PREFIX, JOB_LV_PREFIX, SharedVgJobStore } from '../engine/shared-vg-store.js';
import type { JobStore } from '../engine/store.js';
import { asVolmergeError } from '../errors.js';
import { listLvs, type LvFacts } from '../storage/lvm.js';
import { markHolderFor, readMark, type MarkHolder } from '../storage/marks.js';
import { currentVolumeOf, staleMarkReason } from '../storage/stale-mark.js';
import { resolveVolume, type Volume } from '../storage/volume.js';
import { readLockHolder } from './chain-lock.js';
import { markedRecord } from './preconditions.js';
import { sharedChainOf, type SharedChain } from './shared-chain.js';
import { clearCommand, probeJournalBase, staleJob, staleText, type StaleJob } from './stale.js';
import { decideStatus, type ChainStatus, type StatusFacts } from './status.js';
import { journalsOfBase } from './unfinished.js';

/** The mark of base, or why it cannot be read (added to problems). */
async function markOf(holder: MarkHolder, problems: string[]): Promise<StatusFacts['mark']> {
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
    stale: [],
    ...(mark?.stateDir && mark.stateDir !== store.stateDir ? { markStateDir: mark.stateDir } : {}),
  };
}

/**
 * A job LV that the metadata alone shows stale: made for an earlier LV of base's name (its base-UUID tag names another
 * UUID, or it is older than base), or base is gone. Its journal is not read (another host may hold it).
 */
function staleJobLv(jobLv: LvFacts, base: LvFacts | undefined, chain: SharedChain, store: JobStore, basePath: string): StaleJob | undefined {
  const name = `${chain.vg}/${chain.base.lv}`;
  const uuidTag = jobLv.tags.find((t) => t.startsWith(JOB_BASE_UUID_TAG_PREFIX))?.slice(JOB_BASE_UUID_TAG_PREFIX.length);
  let reason: string | undefined;
  if (!base) reason = `its base ${name} does not exist`;
  else if (uuidTag && base.uuid && uuidTag !== base.uuid) reason = `its base ${name} is another LV now (LV UUID ${base.uuid}, not ${uuidTag}: the LV was made again)`;
  else if (!uuidTag && jobLv.createdAtMs !== undefined && base.createdAtMs !== undefined && jobLv.createdAtMs < base.createdAtMs) {
    reason = `its base ${name} is another LV now (made at ${new Date(base.createdAtMs).toISOString()}, after the job LV)`;
  }
  if (!reason) return undefined;
  const jobId = jobLv.name.startsWith(JOB_LV_PREFIX) ? jobLv.name.slice(JOB_LV_PREFIX.length) : jobLv.name;
  return { jobId, where: store.locationOf(jobLv.name), top: '', base: basePath, createdAt: jobLv.createdAtMs ? new Date(jobLv.createdAtMs).toISOString() : '', reason, clear: clearCommand(store, jobLv.name, basePath) };
}

/** A chain on a shared VG, from LVM's metadata: base's tag, this host's lock, the job LVs (stale ones told apart). */
async function sharedStatus(basePath: string, chain: SharedChain, stateDir: string): Promise<ChainStatus> {
  const store = new SharedVgJobStore(chain.vg, chain.base.lv, stateDir);
  const facts = await commonFacts(basePath, chain.baseIdentity, { kind: 'lv', vg: chain.vg, lv: chain.base.lv }, store, true);
  try {
    const lvs = await listLvs(chain.vg);
    const base = lvs.find((lv) => lv.name === chain.base.lv);
    const keys = new Set(await store.keys());
    for (const jobLv of lvs.filter((lv) => keys.has(lv.name))) {
      const stale = staleJobLv(jobLv, base, chain, store, basePath);
      if (stale) facts.stale.push(stale);
      else facts.unreadJobs.push(`${chain.vg}/${jobLv.name}`);
    }
  } catch (error) {
    facts.problems.push(`the job LVs cannot be listed: ${asVolmergeError(error).message}`);
  }
  return decideStatus(facts);
}

/** The unfinished journal of base and the stale ones that concern it; a mark left by a volume that is gone is called stale. */
async function hostFacts(basePath: string, base: Volume, stateDir: string): Promise<StatusFacts> {
  const store = new HostJobStore(stateDir);
  const holder = markHolderFor(base, stateDir);
  const facts = await commonFacts(basePath, base.identity, holder, store, false);
  try {
    const sorted = await journalsOfBase(store, base);
    facts.stale = sorted.stale;
    if (sorted.unfinished.length > 1) facts.problems.push(`jobs ${sorted.unfinished.map((u) => u.key).join(', ')} in ${store.describe()} all claim this base; keep the right one and move the others away`);
    else facts.journal = sorted.unfinished[0]?.journal ?? null;
  } catch (error) {
    facts.problems.push(asVolmergeError(error).message);
  }
  if (facts.mark) {
    const stale = staleMarkReason(facts.mark, holder, currentVolumeOf(base), await markedRecord(store, facts.mark.jobId, 'base'));
    if (stale !== undefined) facts.mark = { ...facts.mark, stale };
  }
  if (facts.mark && facts.mark.stale === undefined && !facts.journal) {
    // The marked job's journal may be there but unreadable: that is the problem to name.
    const broken = (await store.list().catch(() => [])).find((entry) => entry.key === facts.mark?.jobId && 'error' in entry);
    if (broken && 'error' in broken) facts.markProblem = broken.error.message;
  }
  return facts;
}

/** Reads the status of the chain whose base is at basePath; throws only when base itself cannot be resolved. */
export async function chainStatus(basePath: string, stateDir: string): Promise<ChainStatus> {
  // On a shared VG the journal is in a job LV, not here, and base may be inactive on this host.
  const shared = await sharedChainOf('', basePath);
  if (shared) return sharedStatus(basePath, shared, stateDir);
  const base = await resolveVolume(basePath, 'base');
  return decideStatus(await hostFacts(basePath, base, stateDir));
}

/** The journals of this host's state folder that name basePath as their base, where a successful look finds it gone: stale. */
export async function staleJobsNaming(basePath: string, stateDir: string): Promise<StaleJob[]> {
  const store = new HostJobStore(stateDir);
  const path = resolvePath(basePath);
  const found: StaleJob[] = [];
  for (const entry of await store.list().catch(() => [])) {
    if (!('journal' in entry)) continue;
    const { journal } = entry;
    if (journal.volumes.base.path !== path && journal.volumes.base.realPath !== path) continue;
    const probe = await probeJournalBase(journal);
    if (probe.state === 'gone') found.push(staleJob(store, entry.key, journal, staleText(journal, probe)));
  }
  return found;
}
