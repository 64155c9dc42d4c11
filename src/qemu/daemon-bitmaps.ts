// Bitmap work inside a qemu-storage-daemon, on volumes it holds open: removing many at once, carrying top's bitmaps into
// base, copying bitmaps into a new backup image; and the end of a session, whose exit and stderr are checked as
// qemu-img's are (qemu 7.2 exits 0 after failing to write bitmaps when it closes an image).
import { VolmergeError } from '../errors.js';
import type { CommandResult } from '../os/run.js';
import { closeVolume, expectSuccess, NODE, openVolume } from './daemon-images.js';
import { failOnSilentBitmapLoss, type BitmapCopy } from './mutations.js';
import { daemonComplaint, type QmpCommand, type StorageDaemon } from './qmp.js';
import type { ProtocolDriver } from './queries.js';

/** Throws for a session that did not end well: lost bitmaps or a full device on stderr, a non-zero exit, a signal. */
export function failIfSessionFailed(result: CommandResult, volume: string, action: string): void {
  failOnSilentBitmapLoss(result, volume, `${action} (qemu-storage-daemon)`);
  if (result.exitCode === 0 && !result.signal) return;
  const how = result.signal ? `was stopped by ${result.signal}` : `failed (exit ${result.exitCode}): ${daemonComplaint(result.stderr)}`;
  throw new VolmergeError(result.signal ? 'aborted' : 'qemu-failed', `${volume}: qemu-storage-daemon ${how} during ${action}`, {
    argv: result.argv,
    exitCode: result.exitCode,
    stderr: result.stderr,
  });
}

/** Quits the daemon and checks how it ended (see failIfSessionFailed). */
export async function endSession(daemon: StorageDaemon, volume: string, action: string): Promise<void> {
  failIfSessionFailed(await daemon.quit(), volume, action);
}

/**
 * Opens image read-write, removes the named bitmaps (all commands sent at once; one already gone counts as removed),
 * and closes it again, which writes the remaining bitmaps back. onRemoved(n, total) after each removal.
 */
export async function removeInDaemon(
  daemon: StorageDaemon,
  image: string,
  driver: ProtocolDriver,
  names: readonly string[],
  onRemoved?: (removed: number, total: number) => void,
): Promise<void> {
  await openVolume(daemon, { node: NODE.base, path: image, driver, readOnly: false });
  const commands = names.map((name) => ({ execute: 'block-dirty-bitmap-remove', arguments: { node: NODE.base, name } }));
  const replies = await daemon.executeAll(commands, (answered) => onRemoved?.(answered, names.length));
  replies.forEach((reply, i) => {
    if ('error' in reply && !/not found/i.test(reply.error.desc)) expectSuccess(reply, image, `remove bitmap ${names[i]}`, daemon);
  });
  await closeVolume(daemon, NODE.base, image);
}

/**
 * With base open read-write and top open over it: each bitmap the merge keeps is created in base when missing and
 * merged from top's bitmap of the same name (enabled when asked); all commands are sent at once. Nothing is on disk
 * before base is closed.
 */
export async function carryBitmapsInDaemon(daemon: StorageDaemon, base: string, copies: readonly BitmapCopy[]): Promise<void> {
  const commands: QmpCommand[] = [];
  for (const copy of copies) {
    if (copy.addWithGranularity !== undefined) {
      commands.push({ execute: 'block-dirty-bitmap-add', arguments: { node: NODE.base, name: copy.name, granularity: copy.addWithGranularity, persistent: true } });
    }
    commands.push({ execute: 'block-dirty-bitmap-merge', arguments: { node: NODE.base, target: copy.name, bitmaps: [{ node: NODE.top, name: copy.name }] } });
    if (copy.enable) commands.push({ execute: 'block-dirty-bitmap-enable', arguments: { node: NODE.base, name: copy.name } });
  }
  const replies = await daemon.executeAll(commands);
  replies.forEach((reply, i) => expectSuccess(reply, base, `${commands[i]?.execute ?? 'change'} of a bitmap`, daemon));
}

/** Runs a job to its end (blockdev-create) and dismisses it; throws with the job's error. */
async function runJob(daemon: StorageDaemon, command: QmpCommand, volume: string, what: string): Promise<void> {
  const id = String((command.arguments as { 'job-id': string })['job-id']);
  const concluded = new Promise<void>((resolve) => {
    const stop = daemon.onEvent((event) => {
      if (event.event === 'JOB_STATUS_CHANGE' && event.data.id === id && event.data.status === 'concluded') {
        stop();
        resolve();
      }
    });
  });
  expectSuccess(await daemon.execute(command), volume, what, daemon);
  await concluded;
  const jobs = expectSuccess(await daemon.execute({ execute: 'query-jobs' }), volume, what, daemon) as { id: string; error?: string }[];
  const error = jobs.find((job) => job.id === id)?.error;
  expectSuccess(await daemon.execute({ execute: 'job-dismiss', arguments: { id } }), volume, what, daemon);
  if (error) throw new VolmergeError('qemu-failed', `${volume}: qemu-storage-daemon could not ${what}: ${error}`);
}

/** A bitmap to copy into a backup image. */
export interface BackupBitmap {
  name: string;
  granularity: number;
  enabled: boolean;
}

/**
 * Creates a new qcow2 image at target (virtualSize, no data) and copies bitmaps of the open node source into it
 * (same names and granularities, disabled where they were); closing it writes them. The target must not exist.
 */
export async function backupInDaemon(daemon: StorageDaemon, source: string, target: string, virtualSize: number, bitmaps: readonly BackupBitmap[]): Promise<void> {
  await runJob(daemon, { execute: 'blockdev-create', arguments: { 'job-id': 'mkfile', options: { driver: 'file', filename: target, size: 0 } } }, target, 'create it');
  expectSuccess(await daemon.execute({ execute: 'blockdev-add', arguments: { driver: 'file', 'node-name': NODE.backupFile, filename: target } }), target, 'open it', daemon);
  try {
    const format = { driver: 'qcow2', file: NODE.backupFile, size: virtualSize };
    await runJob(daemon, { execute: 'blockdev-create', arguments: { 'job-id': 'mkqcow2', options: format } }, target, 'format it as qcow2');
    expectSuccess(await daemon.execute({ execute: 'blockdev-add', arguments: { driver: 'qcow2', 'node-name': NODE.backup, file: NODE.backupFile } }), target, 'open it', daemon);
    const commands: QmpCommand[] = [];
    for (const bitmap of bitmaps) {
      const added = { node: NODE.backup, name: bitmap.name, granularity: bitmap.granularity, persistent: true, disabled: !bitmap.enabled };
      commands.push({ execute: 'block-dirty-bitmap-add', arguments: added });
      commands.push({ execute: 'block-dirty-bitmap-merge', arguments: { node: NODE.backup, target: bitmap.name, bitmaps: [{ node: source, name: bitmap.name }] } });
    }
    const replies = await daemon.executeAll(commands);
    replies.forEach((reply, i) => expectSuccess(reply, target, `${commands[i]?.execute ?? 'copy'} of a bitmap into the backup`, daemon));
    await closeVolume(daemon, NODE.backup, target);
  } finally {
    await daemon.execute({ execute: 'blockdev-del', arguments: { 'node-name': NODE.backupFile } }).catch(() => undefined);
  }
}
