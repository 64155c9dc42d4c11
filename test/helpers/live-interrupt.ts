// Test helper for Ctrl-C and SIGTERM on a live merge: the VM's chain as the checks compare it (every node, its backing,
// the devices on it, its bitmaps and whether they record), and the check that an interrupted merge left that chain as it
// was, with no job in qemu.
import { expect } from 'chai';
import { LiveGraph } from '../../src/live/graph.js';
import { queryBlockJobs, queryGraph, queryJobs, queryNodes } from '../../src/live/queries.js';
import type { QmpClient } from '../../src/qemu/qmp-client.js';

/** The VM's nodes as the checks compare them, sorted by node name. */
export type VmChainState = { name: string; ro: boolean; backing: string | null; devices: string[]; bitmaps: (string | boolean)[][] }[];

/** The VM's chain now: every node (read-only, backing, bitmaps and whether they record) and the devices on it. */
export async function vmChainState(qmp: QmpClient): Promise<VmChainState> {
  const nodes = await queryNodes(qmp);
  const graph = new LiveGraph(nodes, await queryGraph(qmp));
  return nodes
    .map((node) => ({
      name: node['node-name'],
      ro: node.ro,
      backing: node.backing_file ?? null,
      devices: graph.devicesOf(node['node-name']),
      bitmaps: (node['dirty-bitmaps'] ?? []).map((b) => [b.name, b.recording, b.persistent, b.inconsistent ?? false]).sort(),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * After an interruption before the pivot: no job in qemu (query-jobs and query-block-jobs empty), and the chain and its
 * bitmaps as before (recording as they did), but for base's stale bitmaps (named stale*), which the prune removed
 * before the job started.
 */
export async function expectVmChainAsBefore(qmp: QmpClient, before: VmChainState): Promise<void> {
  expect(await queryJobs(qmp), 'no job left in qemu').to.deep.equal([]);
  expect(await queryBlockJobs(qmp), 'query-block-jobs empty').to.deep.equal([]);
  const pruned = before.map((node) => ({ ...node, bitmaps: node.bitmaps.filter((b) => !String(b[0]).startsWith('stale')) }));
  expect(await vmChainState(qmp), "the VM's chain and its bitmaps as they were").to.deep.equal(pruned);
}
