// Checks base's bitmaps after a commit through libvirt, which reports success even when its own bitmap transaction
// failed (measured: "Successfully pivoted" with top's bitmaps lost). Every bitmap the plan carries must be in base,
// persistent, recording and consistent, or the merge fails loudly with bitmap-write-failed. Active commit: base is the
// disk's active layer now, whose image does not show bitmaps added at the pivot, so libvirt is asked through a
// checkpoint check; internal commit: libvirt reopened base read-only afterwards, which stored its bitmaps, so its image
// (read with force-share) is exact.
import { VolmergeError } from '../errors.js';
import { readInfo } from '../qemu/queries.js';
import { bitmapsOf } from '../qemu/types.js';
import { bitmapValidInLibvirt } from './checkpoints.js';
import type { LibvirtRecord } from './record.js';
import type { DomainRef } from './virsh.js';

/** The carried bitmaps that base lacks or holds disabled or inconsistent. */
export async function lostBitmaps(ref: DomainRef, record: LibvirtRecord): Promise<string[]> {
  const names = record.bitmaps.merge;
  if (names.length === 0) return [];
  if (record.active) {
    const own = new Set(record.checkpoints);
    const lost: string[] = [];
    for (const name of names) if (!(await bitmapValidInLibvirt(ref, record.target, name, own))) lost.push(name);
    return lost;
  }
  const inBase = new Map(bitmapsOf(await readInfo(record.baseSource, { forceShare: true })).map((b) => [b.name, b.flags]));
  return names.filter((name) => {
    const flags = inBase.get(name);
    return !flags || !flags.includes('auto') || flags.includes('in-use');
  });
}

/** Throws bitmap-write-failed when base lost a carried bitmap (see the file comment). */
export async function verifyCarried(ref: DomainRef, record: LibvirtRecord): Promise<void> {
  const lost = await lostBitmaps(ref, record);
  if (lost.length === 0) return;
  throw new VolmergeError(
    'bitmap-write-failed',
    `base ${record.baseSource}: bitmap ${lost.join(', ')} is missing, disabled or inconsistent after libvirt's commit of ${record.topSource}, though libvirt reported success; ` +
      `the merge itself is done (domain ${record.domain.name} uses base), but the next backup of disk ${record.target} must be a full one, and the lost checkpoints must be made again`,
  );
}
