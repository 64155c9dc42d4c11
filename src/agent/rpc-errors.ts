// JSON-RPC 2.0 error codes of the agent: the protocol's own, and stable application codes for volmerge's errors.
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

/** Application codes, one per volmerge error code; these numbers never change meaning (README lists them). */
export const APPLICATION_CODES: Partial<Record<ErrorCode, number>> = {
  'job-exists': 101,
  'no-such-job': 102,
  'job-not-active': 103,
  'job-not-finished': 104,
  busy: 105,
  'generation-mismatch': 106,
  'not-found': 107,
  'lv-missing': 108,
  'vg-missing': 109,
  'bad-chain': 110,
  'not-qcow2': 111,
  unsupported: 112,
  'lvm-failed': 113,
  'needs-attention': 114,
  'bitmap-in-use': 120,
  'too-small': 121,
  'no-space': 122,
  'qemu-failed': 123,
  'bitmap-write-failed': 124,
  'bad-output': 125,
  'extend-failed': 126,
  'verify-failed': 127,
  aborted: 128,
  'volume-deleted': 129,
  'locked-by-other-host': 130,
  'mid-merge': 131,
  'rebase-failed': 132,
  'shrink-failed': 133,
  'remove-failed': 134,
  'volume-retired': 135,
  internal: 199,
};

/** Any error code that the table above does not list yet. */
export const GENERAL_APPLICATION_CODE = 100;

/** The numeric code of a volmerge error code. */
export function applicationCode(code: ErrorCode): number {
  return APPLICATION_CODES[code] ?? GENERAL_APPLICATION_CODE;
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
