// The bitmap backup: before anything changes a volume's bitmaps, copies of the ones a merge keeps go into a small qcow2
// image in the job's folder (one per volume that has bitmaps to keep, of that volume's virtual size, no data); a crashed
// step's bitmaps are rebuilt from them. Made here by qemu-img; steps/backup.ts makes base's in qemu-storage-daemon.
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { failOnSilentBitmapLoss, removeBitmap } from '../qemu/mutations.js';
import { readDiskBitmaps } from '../qemu/qcow2-bitmaps.js';
import { failIfExited, runQemuImg } from '../qemu/qemu-img.js';
import { isInUse, type BitmapInfo, type ImageInfo } from '../qemu/types.js';
import { removeDurable, syncDir } from '../os/atomic-file.js';
import type { BackedUpBitmap, BackupImage } from './journal.js';

/** File names of the backup images inside the job's folder. */
export const BACKUP_FILES = { top: 'top-bitmaps.qcow2', base: 'base-bitmaps.qcow2' } as const;

/** Creates an empty qcow2 of a virtual size (replacing whatever was there). */
async function createImage(path: string, virtualSize: number): Promise<void> {
  await removeDurable(path);
  const result = await runQemuImg(['create', '-q', '-f', 'qcow2', path, String(virtualSize)]);
  failIfExited(result, path, 'create');
}

/** Copies bitmap NAME of source into a new bitmap NAME of target (same granularity; disabled again if it was). */
export async function copyBitmapInto(target: string, source: string, bitmap: BackedUpBitmap): Promise<void> {
  const args = ['bitmap', '-f', 'qcow2', '--add', '-g', String(bitmap.granularity), '--merge', bitmap.name, '-F', 'qcow2', '-b', source];
  if (!bitmap.enabled) args.push('--disable');
  args.push(target, bitmap.name);
  const action = `bitmap --add --merge ${bitmap.name} from ${source}`;
  const result = await runQemuImg(args);
  failOnSilentBitmapLoss(result, target, action);
  failIfExited(result, target, action);
}

/** A bitmap as the backup records it. */
export function backedUp(bitmap: BitmapInfo): BackedUpBitmap {
  return { name: bitmap.name, granularity: bitmap.granularity, enabled: bitmap.flags.includes('auto') };
}

/** Throws unless a backup image holds exactly these bitmaps, none in-use, each disabled or not as recorded (read from disk). */
export async function verifyBackupImage(image: string, bitmaps: readonly BackedUpBitmap[]): Promise<void> {
  const found = await readDiskBitmaps(image, 'bitmap backup');
  const wrong = bitmaps.filter((b) => {
    const copy = found.find((f) => f.name === b.name);
    return !copy || isInUse(copy) || copy.granularity !== b.granularity || copy.flags.includes('auto') !== b.enabled;
  });
  if (wrong.length > 0 || found.length !== bitmaps.length) {
    throw new VolmergeError('bitmap-write-failed', `bitmap backup ${image}: ${wrong.map((b) => b.name).join(', ') || 'its bitmaps'} not copied whole; nothing was changed, run the merge again`);
  }
}

/** Backs up one volume's chosen bitmaps into a fresh image in the job's folder with qemu-img; no image when there are none to keep. */
export async function backUpVolume(dir: string, file: string, source: string, info: ImageInfo, bitmaps: readonly BitmapInfo[]): Promise<BackupImage> {
  const image = join(dir, file);
  // An image left by an earlier attempt would not match this journal: it goes.
  await removeDurable(image);
  if (bitmaps.length === 0) return { image: file, bitmaps: [] };
  // Made under a temporary name and renamed when whole: a store that keeps backups elsewhere never takes a half-made one.
  const partial = join(dir, `.${file}.partial`);
  await createImage(partial, info['virtual-size']);
  const kept = bitmaps.map(backedUp);
  for (const bitmap of kept) await copyBitmapInto(partial, source, bitmap);
  await verifyBackupImage(partial, kept);
  await rename(partial, image);
  await syncDir(dir);
  return { image: file, bitmaps: kept };
}

/** Replaces bitmap NAME of target (broken or missing) by the copy in the backup image. */
export async function rebuildBitmap(target: string, dir: string, backup: BackupImage, name: string): Promise<void> {
  const bitmap = backup.bitmaps.find((b) => b.name === name);
  if (!bitmap) throw new Error(`no bitmap ${name} in backup ${backup.image}`);
  await removeBitmap(target, name);
  await copyBitmapInto(target, join(dir, backup.image), bitmap);
}

/** Deletes the backup images of a job. */
export async function deleteBitmapBackup(dir: string): Promise<void> {
  for (const file of Object.values(BACKUP_FILES)) await removeDurable(join(dir, file));
}
