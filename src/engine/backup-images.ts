// The bitmap backup: before anything changes, copies of the bitmaps a merge keeps go into two small qcow2 images in
// the job's folder (one per volume that has bitmaps to keep, each of that volume's virtual size, no data); a crashed
// step's bitmaps are rebuilt from them.
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { failOnSilentBitmapLoss, removeBitmap } from '../qemu/mutations.js';
import { failIfExited, runQemuImg } from '../qemu/qemu-img.js';
import { bitmapsOf, isInUse, type BitmapInfo, type ImageInfo } from '../qemu/types.js';
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

function backedUp(bitmap: BitmapInfo): BackedUpBitmap {
  return { name: bitmap.name, granularity: bitmap.granularity, enabled: bitmap.flags.includes('auto') };
}

/** Backs up one volume's chosen bitmaps into a fresh image in the job's folder; no image when there are none to keep. */
async function backUpVolume(dir: string, file: string, source: string, info: ImageInfo, bitmaps: BitmapInfo[]): Promise<BackupImage> {
  const image = join(dir, file);
  // An image left by an earlier attempt would not match this journal: it goes.
  await removeDurable(image);
  if (bitmaps.length === 0) return { image: file, bitmaps: [] };
  // Made under a temporary name and renamed when whole: a store that keeps backups elsewhere never takes a half-made one.
  const partial = join(dir, `.${file}.partial`);
  await createImage(partial, info['virtual-size']);
  const kept = bitmaps.map(backedUp);
  for (const bitmap of kept) await copyBitmapInto(partial, source, bitmap);
  await rename(partial, image);
  await syncDir(dir);
  return { image: file, bitmaps: kept };
}

/** The two halves of a bitmap backup: base's (whole when returned) and top's (being made). */
export interface BackupInProgress {
  /** What the journal records: known before top's image is made (names and granularities come from the inspection). */
  record: { top: BackupImage; base: BackupImage };
  /** Settles when top's image is whole; nothing writes top's bitmaps before the commit, so only the commit waits for it. */
  top: Promise<BackupImage>;
}

/**
 * Backs up the base bitmaps that valid top bitmaps merge into (the only base bitmaps the merge keeps) before anything
 * changes base, and starts the backup of every consistent bitmap of top (valid and disabled ones: top's own are
 * restored if a crash breaks them), which may run on while base's stale bitmaps are pruned.
 */
export async function startBitmapBackup(
  dir: string,
  top: { realPath: string; info: ImageInfo },
  base: { realPath: string; info: ImageInfo },
  keptNames: readonly string[],
): Promise<BackupInProgress> {
  const topBitmaps = bitmapsOf(top.info).filter((b) => !isInUse(b));
  const baseBitmaps = bitmapsOf(base.info).filter((b) => keptNames.includes(b.name) && !isInUse(b));
  const baseBackup = await backUpVolume(dir, BACKUP_FILES.base, base.realPath, base.info, baseBitmaps);
  const topBackup = backUpVolume(dir, BACKUP_FILES.top, top.realPath, top.info, topBitmaps);
  // Handled by whoever awaits it; never an unhandled rejection meanwhile.
  topBackup.catch(() => undefined);
  return { record: { top: { image: BACKUP_FILES.top, bitmaps: topBitmaps.map(backedUp) }, base: baseBackup }, top: topBackup };
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
