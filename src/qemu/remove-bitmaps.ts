// Removes many bitmaps from one image with one process: a qemu-storage-daemon (one given by the caller, or one of its
// own) instead of one `qemu-img bitmap --remove` per bitmap; qemu-img when the daemon is not installed. Same checks as
// removeBitmap: stderr searched for lost bitmaps whatever the exit code; callers re-read the image afterwards.
import { endSession, removeInDaemon } from './daemon-bitmaps.js';
import { removeBitmap } from './mutations.js';
import { startStorageDaemon, type StorageDaemon } from './qmp.js';
import type { ProtocolDriver } from './queries.js';

/**
 * Removes the named bitmaps from a qcow2 image; one that is already gone counts as removed. daemon: a running
 * qemu-storage-daemon that holds nothing open, used and left running (the image closed again); without one, a daemon of
 * its own is started and quit, or qemu-img removes one bitmap per run when the daemon is not installed.
 * onRemoved(n, total) is called once n of the bitmaps are removed (crash tests kill the process there).
 */
export async function removeBitmaps(
  image: string,
  driver: ProtocolDriver,
  names: readonly string[],
  onRemoved?: (removed: number, total: number) => void,
  daemon?: StorageDaemon,
): Promise<void> {
  if (names.length === 0) return;
  if (daemon) return removeInDaemon(daemon, image, driver, names, onRemoved);
  const own = names.length > 1 ? await startStorageDaemon() : undefined;
  if (own) {
    try {
      await removeInDaemon(own, image, driver, names, onRemoved);
    } finally {
      await endSession(own, image, `removal of bitmaps ${names.join(', ')}`);
    }
    return;
  }
  for (const [i, name] of names.entries()) {
    await removeBitmap(image, name);
    onRemoved?.(i + 1, names.length);
  }
}
