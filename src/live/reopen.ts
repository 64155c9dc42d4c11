// Reopens base (or top) read-write or read-only in the running VM (blockdev-reopen). qemu stores a node's bitmaps, as they are
// then, when it reopens the node read-only; changes made to the bitmaps of a read-only node are never stored.
import type { QmpClient } from '../qemu/qmp-client.js';
import type { LiveChain } from './chain.js';
import { LiveGraph } from './graph.js';
import { queryGraph, queryNodes } from './queries.js';

/** Reopens base's format node read-only or read-write (see reopenVolume). */
export async function reopenBase(client: QmpClient, chain: LiveChain, readOnly: boolean): Promise<void> {
  await reopenVolume(client, chain, 'base', readOnly);
}

/**
 * Reopens top's or base's format node read-only or read-write; nothing when it already is, or (read-only) when a device writes
 * to it. blockdev-reopen takes the node's whole set of options: driver, file, backing and read-only are given as they
 * are now; options that QMP cannot read back (qcow2 cache sizes, say) return to their defaults, which they are for a
 * node opened with those four alone (-blockdev, libvirt). With a read-only storage node (no auto-read-only), qemu
 * refuses to make it writable and this fails with qemu's reason.
 */
export async function reopenVolume(client: QmpClient, chain: LiveChain, which: 'top' | 'base', readOnly: boolean): Promise<void> {
  const volume = chain[which];
  const graph = new LiveGraph(await queryNodes(client), await queryGraph(client));
  const node = graph.node(volume.format);
  if (!node || node.ro === readOnly || (readOnly && graph.devicesOf(volume.format).length > 0)) return;
  const options = {
    driver: node.drv,
    'node-name': volume.format,
    file: graph.child(volume.format, 'file') ?? volume.storage,
    backing: graph.child(volume.format, 'backing') ?? null,
    'read-only': readOnly,
  };
  await client.call('blockdev-reopen', { options: [options] });
}
