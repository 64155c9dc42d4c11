// The block job of a disk through libvirt (one job per disk at a time): its raw info (the truth, with the live XML),
// and the commands that start a commit, pivot it, change its bandwidth and abort it. None waits (no `--wait`).
import { VolmergeError } from '../errors.js';
import { layerName, type LibvirtChain } from './disk-chain.js';
import { virsh, type DomainRef } from './virsh.js';

/** A disk's block job as `virsh blockjob --info --raw` gives it. */
export interface LibvirtJob {
  /** 'Active Block Commit', 'Block Commit', 'Block Copy', 'Block Pull', ... */
  type: string;
  cur: number;
  end: number;
  /** Bytes per second or MiB per second, as libvirt reports it (0: unlimited). */
  bandwidth: number;
}

/** The job types that a commit of ours runs as. */
export const COMMIT_TYPES = ['Active Block Commit', 'Block Commit'];

/** Parses `virsh blockjob --info --raw` (` type=...`, ` cur=N`, ...); undefined when the disk has no job (empty output). */
export function parseJobInfo(text: string, source: string): LibvirtJob | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\s*([a-z_]+)=(.*)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) fields.set(match[1], match[2].trim());
  }
  if (fields.size === 0) {
    if (text.trim() === '' || /No current block job/i.test(text)) return undefined;
    throw new VolmergeError('bad-output', `${source}: unexpected output ${JSON.stringify(text.slice(0, 200))}`);
  }
  const numbers = ['cur', 'end', 'bandwidth'].map((key) => Number(fields.get(key)));
  const type = fields.get('type');
  if (!type || numbers.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new VolmergeError('bad-output', `${source}: expected type, cur, end and bandwidth, got ${JSON.stringify(text.slice(0, 200))}`);
  }
  const [cur = 0, end = 0, bandwidth = 0] = numbers;
  return { type, cur, end, bandwidth };
}

/** The disk's block job now, or undefined. */
export async function readJob(ref: DomainRef, target: string): Promise<LibvirtJob | undefined> {
  const text = await virsh(ref, ['blockjob', '--domain', ref.domain, '--path', target, '--info', '--raw'], `reading the block job of ${target}`);
  return parseJobInfo(text, `virsh blockjob ${ref.domain} ${target} --info --raw`);
}

/** Copy progress, 0 to 100. */
export function percentOf(job: LibvirtJob): number {
  return job.end > 0 ? Math.min(100, Math.floor((job.cur * 100) / job.end)) : 0;
}

/** Options of startCommit. */
export interface CommitOptions {
  /** Bytes per second (0 or none: unlimited). */
  bandwidthBytes?: number;
  /** Keep the backing name that the layer above top gets relative (top's own is relative). */
  keepRelative?: boolean;
}

/** Starts the commit of top into base (active: the disk's active layer, pivot later); returns at once. */
export async function startCommit(ref: DomainRef, chain: LibvirtChain, options: CommitOptions = {}): Promise<void> {
  const args = ['blockcommit', '--domain', ref.domain, '--path', chain.target, '--top', layerName(chain.target, chain.top.index), '--base', layerName(chain.target, chain.base.index)];
  if (chain.active) args.push('--active');
  if (options.keepRelative) args.push('--keep-relative');
  if (options.bandwidthBytes) args.push('--bytes', '--bandwidth', String(options.bandwidthBytes));
  await virsh(ref, args, `starting the commit of ${chain.top.path} into ${chain.base.path} (virsh blockcommit)`);
}

/** Pivots a ready active commit: the disk writes to base from now on (synchronous in libvirt). */
export async function pivotJob(ref: DomainRef, target: string): Promise<void> {
  await virsh(ref, ['blockjob', '--domain', ref.domain, '--path', target, '--pivot'], `pivoting the commit of ${target} (virsh blockjob --pivot)`);
}

/** Aborts the disk's job without a pivot (libvirt waits until it is gone). */
export async function abortJob(ref: DomainRef, target: string): Promise<void> {
  await virsh(ref, ['blockjob', '--domain', ref.domain, '--path', target, '--abort'], `cancelling the block job of ${target} (virsh blockjob --abort)`);
}

/** Changes the job's bandwidth (bytes per second; 0: unlimited). */
export async function setBandwidth(ref: DomainRef, target: string, bytes: number): Promise<void> {
  await virsh(ref, ['blockjob', '--domain', ref.domain, '--path', target, '--bytes', '--bandwidth', String(bytes)], `changing the bandwidth of ${target}'s job`);
}
