// `volmerge status` of a chain on a shared VG, read from LVM metadata alone (no activation, no lock taken): the mark
// tag on base, this host's chain lock, and the job LVs of base, whichever host wrote them.
import { asVolmergeError } from '../errors.js';
import { listLvs } from '../storage/lvm.js';
import { readMark } from '../storage/marks.js';
import { readLockHolder } from './chain-lock.js';
import type { ChainStatus } from './chain-status.js';
import type { SharedChain } from './shared-chain.js';
import { JOB_BASE_TAG_PREFIX, JOB_LV_TAG } from './shared-vg-store.js';

/** The status of a shared-VG chain; its journal stays unread (it is in a job LV that another host may hold). */
export async function sharedChainStatus(basePath: string, chain: SharedChain): Promise<ChainStatus> {
  const { vg } = chain;
  const status: ChainStatus = { base: basePath, identity: chain.baseIdentity, state: 'idle', mark: null, lock: null, job: null, problem: null, advice: '' };
  const problems: string[] = [];
  try {
    status.mark = (await readMark({ kind: 'lv', vg, lv: chain.base.lv })) ?? null;
  } catch (error) {
    problems.push(`the mark cannot be read: ${asVolmergeError(error).message}`);
  }
  const holder = await readLockHolder(chain.baseIdentity);
  if (holder) status.lock = { pid: holder.pid, jobId: holder.jobId, since: holder.since };
  let jobLvs: string[] = [];
  try {
    jobLvs = (await listLvs(vg)).filter((lv) => lv.tags.includes(JOB_LV_TAG) && lv.tags.includes(`${JOB_BASE_TAG_PREFIX}${chain.base.lv}`)).map((lv) => lv.name);
  } catch (error) {
    problems.push(`the job LVs cannot be listed: ${asVolmergeError(error).message}`);
  }
  const finish =
    `run the same volmerge merge on any host of the cluster: it finishes the merge as soon as no other host holds the chain ` +
    `(until then it is refused with locked-by-other-host; a host that died releases it when its sanlock lease expires, about 140 s after its death)`;
  if (status.lock) {
    status.state = 'merging';
    status.advice = `job ${status.lock.jobId} (pid ${status.lock.pid}) of this host is merging this chain; wait for it to end`;
  } else if (problems.length > 0) {
    status.state = 'needs-attention';
    status.problem = problems.join('; ');
    status.advice = 'base may hold part of a merge: see "Clusters" in the README before using or merging it';
  } else if (jobLvs.length > 0) {
    status.state = 'unfinished';
    status.advice = `job LV ${jobLvs.map((name) => `${vg}/${name}`).join(', ')} holds the journal of a merge that has not ended (it may be running on another host); ${finish}`;
  } else if (status.mark) {
    status.state = 'needs-attention';
    status.problem = `base is marked mid-merge by job ${status.mark.jobId} but VG ${vg} holds no job LV of it`;
    status.advice = 'base may hold part of a merge: see "Crash safety" in the README before using or merging it';
  } else {
    status.advice = 'no merge of this chain is running here or unfinished in the shared VG';
  }
  return status;
}
