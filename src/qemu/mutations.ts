// qemu-img mutations: bitmap add/remove/merge and commit; stderr is searched for the failures that exit 0 hides.
import { VolmergeError } from '../errors.js';
import { parseAgainst } from '../schema.js';
import { failIfCorrupt, failIfExited, runQemuImg } from './qemu-img.js';
import { findBitmapWriteFailure, findNoSpace } from './stderr-failures.js';
import { ProgressParser } from './progress.js';
import type { CommandResult } from '../os/run.js';
import type { CheckInfo } from './types.js';

/**
 * Throws 'bitmap-write-failed' when qemu-img reported a lost bitmap, else 'no-space' when it reported a full device,
 * whatever its exit code.
 */
export function failOnSilentBitmapLoss(result: CommandResult, volume: string, action: string): void {
  const details = { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr };
  const lost = findBitmapWriteFailure(result.stderr);
  if (lost !== undefined) {
    throw new VolmergeError(
      'bitmap-write-failed',
      `${volume}: qemu-img ${action} could not write bitmaps (exit ${result.exitCode}): ${lost.replace(/^qemu-img:\s*/, '')}; ` +
        'the volume is probably too small: extend it, then run the merge again',
      details,
    );
  }
  const full = findNoSpace(result.stderr);
  if (full !== undefined) {
    throw new VolmergeError('no-space', `${volume}: qemu-img ${action} ran out of space (exit ${result.exitCode}): ${full.replace(/^qemu-img:\s*/, '')}`, details);
  }
}

/** Removes one bitmap; one that is already gone counts as removed. */
export async function removeBitmap(image: string, name: string): Promise<void> {
  const result = await runQemuImg(['bitmap', '--remove', '-f', 'qcow2', image, name]);
  failOnSilentBitmapLoss(result, image, `bitmap --remove ${name}`);
  if (result.exitCode !== 0 && /not found/i.test(result.stderr)) return;
  failIfExited(result, image, `bitmap --remove ${name}`);
}

/** What to do to one bitmap of base in the bitmaps-back step. */
export interface BitmapCopy {
  name: string;
  /** Create it in base first, with this granularity. */
  addWithGranularity?: number;
  /** Enable it (a base bitmap that was disabled). */
  enable?: boolean;
}

/** Adds (when asked) and merges top's bitmap NAME into base's bitmap NAME, in one qemu-img run. */
export async function copyBitmap(base: string, top: string, copy: BitmapCopy): Promise<void> {
  const args = ['bitmap', '-f', 'qcow2'];
  if (copy.addWithGranularity !== undefined) args.push('--add', '-g', String(copy.addWithGranularity));
  if (copy.enable) args.push('--enable');
  args.push('--merge', copy.name, '-F', 'qcow2', '-b', top, base, copy.name);
  const action = `bitmap ${copy.addWithGranularity !== undefined ? '--add ' : ''}--merge ${copy.name}`;
  const result = await runQemuImg(args);
  failOnSilentBitmapLoss(result, base, action);
  failIfExited(result, base, action);
}

/** Options of a commit. */
export interface CommitOptions {
  onProgress?: (percent: number) => void;
  signal?: AbortSignal;
  /** Rate limit in bytes per second (tests slow the commit down with it). */
  rateLimit?: number;
}

/** `qemu-img commit -p -t none -b BASE TOP`: writes top's data into base; top is kept (-b implies -d). */
export async function commit(top: string, base: string, options: CommitOptions = {}): Promise<void> {
  const args = ['commit', '-p', '-t', 'none', '-f', 'qcow2', '-b', base];
  if (options.rateLimit) args.push('-r', String(options.rateLimit));
  args.push(top);
  const parser = options.onProgress ? new ProgressParser(options.onProgress) : undefined;
  const result = await runQemuImg(args, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(parser ? { onStdout: (chunk: string) => parser.push(chunk) } : {}),
  });
  failOnSilentBitmapLoss(result, base, 'commit');
  failIfExited(result, top, 'commit');
}

/**
 * `qemu-img rebase -u -f qcow2 -F FORMAT -b BACKING IMAGE`: points IMAGE at another backing file without reading or
 * copying data (safe only when the new backing reads exactly as the old one); the caller re-reads IMAGE to verify.
 */
export async function rebaseUnsafe(image: string, backing: string, backingFormat: 'qcow2' | 'raw' = 'qcow2'): Promise<void> {
  const result = await runQemuImg(['rebase', '-u', '-f', 'qcow2', '-F', backingFormat, '-b', backing, image]);
  failOnSilentBitmapLoss(result, image, 'rebase -u');
  failIfExited(result, image, `rebase -u -b ${backing}`);
}

/**
 * `qemu-img check -r leaks`: gives back the clusters that an interrupted writer left counted but unreferenced (qcow2
 * writes a cluster's refcount before the table entry that points at it). Resolves with how many it gave back; throws
 * on corruption (which -r leaks leaves alone), on leaks it could not give back, and on bitmaps lost as it closed.
 */
export async function repairLeaks(image: string): Promise<number> {
  const result = await runQemuImg(['check', '-r', 'leaks', '--output', 'json', '-f', 'qcow2', image]);
  failOnSilentBitmapLoss(result, image, 'check -r leaks');
  failIfCorrupt(result, image);
  if (result.exitCode === 3) {
    throw new VolmergeError('verify-failed', `${image}: qemu-img check -r leaks left leaked clusters behind; run it by hand to see why, then the merge again`, {
      argv: result.argv,
      exitCode: 3,
      stderr: result.stderr.slice(-4000),
    });
  }
  failIfExited(result, image, 'check -r leaks');
  return parseAgainst<CheckInfo>('qemu-img-check.schema.json', result.stdout, `qemu-img check -r leaks ${image}`)['leaks-fixed'] ?? 0;
}
