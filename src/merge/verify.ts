// Checks that a bitmap-touching command really left the bitmaps as intended: qemu-img's exit code is not enough.
import { VolmergeError } from '../errors.js';
import { bitmapsOf, isInUse, type BitmapInfo, type ImageInfo } from '../qemu/types.js';

/** The bitmaps of qemu-img info's reading, or of a reading of the bitmap directory itself (qemu/qcow2-bitmaps.ts). */
function listed(read: ImageInfo | readonly BitmapInfo[]): readonly BitmapInfo[] {
  return Array.isArray(read) ? read : bitmapsOf(read as ImageInfo);
}

/** Throws 'bitmap-write-failed' when any bitmap of the image is in-use (but those named in except). */
export function assertNoInUseBitmaps(
  info: ImageInfo | readonly BitmapInfo[],
  role: string,
  path: string,
  after: string,
  except: readonly string[] = [],
): void {
  const broken = listed(info)
    .filter((b) => isInUse(b) && !except.includes(b.name))
    .map((b) => b.name);
  if (broken.length === 0) return;
  throw new VolmergeError(
    'bitmap-write-failed',
    `${role} ${path}: after ${after}, bitmap ${broken.join(', ')} is in-use (qemu-img lost it, probably for lack of space); ` +
      'the data is intact; extend the volume and run the merge again',
  );
}

/** Throws 'verify-failed' unless base's bitmaps are exactly the expected ones, each recording and consistent. */
export function assertBitmapsExactly(info: ImageInfo | readonly BitmapInfo[], expected: readonly string[], path: string): void {
  const bitmaps = listed(info);
  const names = new Set(bitmaps.map((b) => b.name));
  const missing = expected.filter((name) => !names.has(name));
  const extra = [...names].filter((name) => !expected.includes(name));
  const notRecording = bitmaps.filter((b) => expected.includes(b.name) && !b.flags.includes('auto')).map((b) => b.name);
  const problems = [
    missing.length ? `missing ${missing.join(', ')}` : '',
    extra.length ? `unexpected ${extra.join(', ')}` : '',
    notRecording.length ? `not enabled ${notRecording.join(', ')}` : '',
  ].filter(Boolean);
  if (problems.length > 0) throw new VolmergeError('verify-failed', `base ${path}: bitmaps after the merge are wrong: ${problems.join('; ')}`);
}
