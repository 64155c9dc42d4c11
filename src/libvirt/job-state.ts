// Where a commit through libvirt stands, read from the truth: the domain's live XML (the chain, the mirror and its
// ready flag) and the disk's block job (`blockjob --info --raw`). Events never decide anything.
import { VolmergeError } from '../errors.js';
import { COMMIT_TYPES, percentOf, readJob, type LibvirtJob } from './block-job.js';
import { diskHolds, diskOf } from './disk-chain.js';
import { readDomain, type DomainDisk } from './domain-xml.js';
import type { LibvirtRecord } from './record.js';
import type { DomainRef } from './virsh.js';

/** The commit as libvirt shows it now. */
export interface CommitState {
  /** The disk's job (ours when it is a commit), or undefined. */
  job: LibvirtJob | undefined;
  /** The chain no longer has top (active: the disk's active layer is base; internal: top gone, base still there). */
  merged: boolean;
  /** An active commit whose copy is done: the XML's mirror says ready and the job's cur equals its end. */
  ready: boolean;
  percent: number;
  disk: DomainDisk;
}

/** What a journal's record needs to read the state. */
export type CommitRecord = Pick<LibvirtRecord, 'target' | 'active' | 'topSource' | 'baseSource'>;

/** Reads the state (two virsh calls); 'vm-gone' when the domain no longer runs, 'bad-chain' when it lost the disk. */
export async function readCommitState(ref: DomainRef, record: CommitRecord): Promise<CommitState> {
  // The job first: libvirt drops it from QEMU's list before it has rewritten the XML, never after (see settledState).
  const job = await readJob(ref, record.target);
  const facts = await readDomain(ref);
  if (!facts.running) throw new VolmergeError('vm-gone', `domain ${facts.name} stopped while its disk ${record.target} was being merged; merge the chain again without --domain to finish it cold`);
  const disk = diskOf(facts, record.target);
  if (!disk) throw new VolmergeError('bad-chain', `domain ${facts.name} no longer has disk ${record.target}`);
  const [topThere, baseThere] = await Promise.all([diskHolds(disk, record.topSource), diskHolds(disk, record.baseSource)]);
  const merged = !topThere && baseThere && (!record.active || disk.layers[0]?.path === record.baseSource || job === undefined);
  const ready = record.active && !merged && disk.mirror?.ready === true && job !== undefined && job.cur === job.end;
  if (job && !COMMIT_TYPES.includes(job.type)) {
    throw new VolmergeError('busy', `disk ${record.target} of domain ${facts.name} runs another block job (${job.type}); merge once it has ended`);
  }
  return { job, merged, ready, percent: job ? percentOf(job) : merged ? 100 : 0, disk };
}

/** How long a commit whose job is gone may take to show merged in the XML (libvirt finishes it in a worker thread). */
const SETTLE_MS = 15_000;

/**
 * The state once it has settled: a job that QEMU has ended but whose end libvirt has not yet written into the XML reads
 * as no job and top still there for a moment; that is read again for a while before it counts as ended unmerged.
 */
export async function settledState(ref: DomainRef, record: CommitRecord, read: () => Promise<CommitState> = () => readCommitState(ref, record)): Promise<CommitState> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const state = await read();
    if (state.job || state.merged || Date.now() > deadline) return state;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
