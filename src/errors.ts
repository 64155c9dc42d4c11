// The one error type of volmerge: a stable code for scripts, a message that names the volume and what to do.

/** Stable error codes: scripts and the agent's clients match on these, never on messages. */
export type ErrorCode =
  | 'usage'
  | 'not-found'
  | 'not-qcow2'
  | 'bad-chain'
  | 'not-in-image'
  | 'bitmap-in-use'
  | 'too-small'
  | 'no-space'
  | 'qemu-failed'
  | 'bitmap-write-failed'
  | 'bad-output'
  | 'lvm-failed'
  | 'lv-missing'
  | 'vg-missing'
  | 'extend-failed'
  | 'verify-failed'
  | 'busy'
  | 'aborted'
  | 'volume-deleted'
  | 'generation-mismatch'
  | 'locked-by-other-host'
  | 'needs-attention'
  | 'mid-merge'
  | 'job-exists'
  | 'no-such-job'
  | 'job-not-active'
  | 'job-not-finished'
  | 'unsupported'
  | 'rebase-failed'
  | 'shrink-failed'
  | 'remove-failed'
  | 'volume-retired'
  | 'unsupported-image'
  | 'bitmaps-unsupported'
  | 'vm-gone'
  | 'not-stale'
  | 'job-gone'
  | 'internal';

/**
 * Where an aborted merge left its chain: as-before (top not merged, the chain usable as it was; a live merge's block
 * job cancelled) or unfinished (its journal kept: the same merge run again finishes it from resumeFrom).
 */
export interface Interruption {
  chain: 'as-before' | 'unfinished';
  /** The step the same merge run again goes on from (unfinished only). */
  resumeFrom?: string;
}

/** A failure volmerge understands: code, one-line message, and the command output behind it when there is one. */
export class VolmergeError extends Error {
  override readonly name = 'VolmergeError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { argv?: readonly string[]; exitCode?: number | undefined; stderr?: string; interrupted?: Interruption } = {},
  ) {
    super(message);
  }
}

/** Wraps anything thrown into a VolmergeError, keeping ours as they are. */
export function asVolmergeError(error: unknown): VolmergeError {
  if (error instanceof VolmergeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new VolmergeError('internal', `internal error: ${message}`);
}
