// JSON-RPC 2.0 error codes of the agent: the protocol's own (as vdsm's yajsonrpc uses them), vdsm's numbers for the
// errors vdsm has too, and stable numbers in a range vdsm does not use for volmerge's other errors.
import type { ErrorCode } from '../errors.js';

/** The protocol's codes (JSON-RPC 2.0), plus the agent's server errors in the -32000..-32099 range. */
export const RPC = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** TCP request without the right `Authorization: Bearer <token>`. */
  unauthorized: -32001,
} as const;

/**
 * The numbers of the errors that vdsm has too, as vdsm's exception modules number them (lib/vdsm/common/exception.py,
 * lib/vdsm/storage/exception.py): an engine maps these to its own error table.
 */
export const VDSM_CODES: Partial<Record<ErrorCode, number>> = {
  'vm-gone': 1, // NoSuchVM: vdsm answers so for a VM that does not run on the host
  'no-such-job': 66, // NoSuchJob
  'job-not-finished': 68, // JobNotDone
  'job-exists': 69, // JobExists
  'job-not-active': 84, // JobNotActive
  'generation-mismatch': 911, // GenerationMismatch
  'not-in-image': 920, // VolumeIsNotInChain
  'bad-chain': 921, // WrongParentVolume
  internal: 100, // GeneralException
};

/**
 * volmerge's own errors, in 3100-3199: vdsm's exception modules use 3000 and 3001 and nothing else from 3002 to 3999,
 * and numbers from 5000 up belong to the engine. Each is 3100 plus its old number's last two digits; never reused.
 */
export const VOLMERGE_CODES: Partial<Record<ErrorCode, number>> = {
  busy: 3105,
  'not-found': 3107,
  'lv-missing': 3108,
  'vg-missing': 3109,
  'not-qcow2': 3111,
  unsupported: 3112,
  'lvm-failed': 3113,
  'needs-attention': 3114,
  'bitmap-in-use': 3120,
  'too-small': 3121,
  'no-space': 3122,
  'qemu-failed': 3123,
  'bitmap-write-failed': 3124,
  'bad-output': 3125,
  'extend-failed': 3126,
  'verify-failed': 3127,
  aborted: 3128,
  'volume-deleted': 3129,
  'locked-by-other-host': 3130,
  'mid-merge': 3131,
  'rebase-failed': 3132,
  'shrink-failed': 3133,
  'remove-failed': 3134,
  'volume-retired': 3135,
  'unsupported-image': 3136,
  'bitmaps-unsupported': 3137,
  'job-gone': 3138,
};

/** Any error code that neither table lists: vdsm's GeneralException. */
export const GENERAL_APPLICATION_CODE = 100;

/** The numeric code of a volmerge error code. */
export function applicationCode(code: ErrorCode): number {
  return VDSM_CODES[code] ?? VOLMERGE_CODES[code] ?? GENERAL_APPLICATION_CODE;
}

/** A JSON-RPC error object; data.name carries volmerge's string code. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { name: string };
}

/** Builds an error object. */
export function rpcError(code: number, message: string, name?: string): RpcErrorObject {
  return name ? { code, message, data: { name } } : { code, message };
}
