// Removes many bitmaps from one image with one process: one qemu-storage-daemon instead of one `qemu-img bitmap --remove`
// per bitmap (32 stale bitmaps: one process and one image open instead of 32). Same checks as removeBitmap.
import { VolmergeError } from '../errors.js';
import type { CommandResult } from '../os/run.js';
import { BUSY_HINT, classifyOpenFailure } from './qemu-img.js';
import { failOnSilentBitmapLoss, removeBitmap } from './mutations.js';
import { QMP_IMAGE_NODE, runQmpOnImage, type StorageDaemon } from './qmp.js';
import type { ProtocolDriver } from './queries.js';

/** The daemon's first stderr line without its program name and the --blockdev option it quotes. */
function daemonComplaint(stderr: string): string {
  const line = stderr.split(/\r?\n/).map((l) => l.trim()).find((l) => l.length > 0) ?? '';
  return line.replace(/^qemu-storage-daemon:\s*/, '').replace(/^--blockdev \S+:\s*/, '') || 'no message';
}

/** Throws a VolmergeError naming the image when the daemon did not open it, was stopped, or exited non-zero. */
function failIfDaemonFailed(result: CommandResult, opened: boolean, image: string, names: readonly string[]): void {
  if (opened && result.exitCode === 0 && !result.signal) return;
  const code = result.signal ? 'aborted' : classifyOpenFailure(result.stderr);
  const hint = code === 'busy' ? BUSY_HINT : '';
  const how = result.signal ? `was stopped by ${result.signal}` : `failed (exit ${result.exitCode}): ${daemonComplaint(result.stderr)}`;
  throw new VolmergeError(code, `${image}: removing bitmaps ${names.join(', ')} with qemu-storage-daemon ${how}${hint}`, {
    argv: result.argv,
    exitCode: result.exitCode,
    stderr: result.stderr,
  });
}

/**
 * Removes the named bitmaps from a qcow2 image; one that is already gone counts as removed. Uses one
 * qemu-storage-daemon when there are several and it is installed, else `qemu-img bitmap --remove` for each. Either way
 * stderr is searched for lost bitmaps, whatever the exit code; callers re-read the image as after removeBitmap.
 * onRemoved(n, total) is called once n of the bitmaps are removed (crash tests kill the process there). daemon: one
 * started ahead for this (see startStorageDaemon); it is used, or stopped when qemu-img does the work.
 */
export async function removeBitmaps(
  image: string,
  driver: ProtocolDriver,
  names: readonly string[],
  onRemoved?: (removed: number, total: number) => void,
  daemon?: Promise<StorageDaemon | undefined>,
): Promise<void> {
  const ready = await daemon;
  if (names.length <= 1) await ready?.stop();
  if (names.length > 1) {
    const commands = names.map((name) => ({ execute: 'block-dirty-bitmap-remove', arguments: { node: QMP_IMAGE_NODE, name } }));
    const session = await runQmpOnImage(image, driver, commands, (answered) => onRemoved?.(answered, names.length), ready);
    if (session) {
      const { replies, result } = session;
      failOnSilentBitmapLoss(result, image, 'bitmap removal (qemu-storage-daemon)');
      failIfDaemonFailed(result, replies.length === names.length, image, names);
      replies.forEach((reply, i) => {
        if (!('error' in reply) || /not found/i.test(reply.error.desc)) return;
        throw new VolmergeError('qemu-failed', `${image}: qemu-storage-daemon could not remove bitmap ${names[i]}: ${reply.error.desc}`, {
          argv: result.argv,
          exitCode: result.exitCode,
          stderr: result.stderr,
        });
      });
      return;
    }
  }
  for (const [i, name] of names.entries()) {
    await removeBitmap(image, name);
    onRemoved?.(i + 1, names.length);
  }
}
