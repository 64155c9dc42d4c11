// Finds top and base (paths as the VM opened them) among a running VM's block nodes, and checks that the VM's chain
// really runs top -> base: storage nodes are matched by the volume they open, then their qcow2 format nodes are
// followed through the graph (a relative backing name makes a node's own filename a json:{...} string, never matched).
import { VolmergeError } from '../errors.js';
import type { QmpClient } from '../qemu/qmp-client.js';
import { LiveGraph } from './graph.js';
import { volumeKey } from './identity.js';
import { queryGraph, queryNodes, type LiveBitmap } from './queries.js';

/** One volume of the chain as the VM holds it. */
export interface LiveVolume {
  /** The path as the caller gave it. */
  path: string;
  /** Its qcow2 format node. */
  format: string;
  /** Its storage node (file or host_device) and the file name qemu opened. */
  storage: string;
  storagePath: string;
  /** Its persistent and temporary dirty bitmaps, as qemu holds them now. */
  bitmaps: LiveBitmap[];
}

/** top -> base in a running VM, and where the chain sits in it. */
export interface LiveChain {
  top: LiveVolume;
  base: LiveVolume;
  /** True when top is the active layer (the device writes to it): an active merge, with a pivot. */
  active: boolean;
  /** The overlay whose backing is top (internal merge only): it ends backed by base. */
  above?: { format: string; storagePath: string };
  /** The device's root node (the active layer); block-commit's `device`. */
  root: string;
  /** The device (qdev path of its block backend) whose chain this is. */
  device: string;
  /** The backing name written in top's header (relative or absolute), when qemu reports it. */
  topBackingName?: string;
}

/** Reads the VM's nodes and graph (two queries) and finds the chain top -> base; clear errors naming the volume. */
export async function findLiveChain(client: QmpClient, paths: { top: string; base: string }): Promise<LiveChain> {
  const graph = new LiveGraph(await queryNodes(client), await queryGraph(client));
  return chainIn(graph, paths, client.peer);
}

/** findLiveChain on a graph already read. */
export async function chainIn(graph: LiveGraph, paths: { top: string; base: string }, peer: string): Promise<LiveChain> {
  const top = await volumeIn(graph, paths.top, 'top', peer);
  const base = await volumeIn(graph, paths.base, 'base', peer);
  const below = graph.backingOf(top.format);
  if (below !== base.format) {
    const what = below === undefined ? 'nothing' : `${storagePathOf(graph, below) ?? below} (node ${below})`;
    throw new VolmergeError('bad-chain', `top ${paths.top}: in the VM behind ${peer} it is backed by ${what}, not by base ${paths.base}; give the volume right below top as base`);
  }
  const devices = graph.devicesOf(top.format);
  const overlays = graph.overlaysOf(top.format);
  if (devices.length + overlays.length !== 1) {
    throw new VolmergeError('bad-chain', `top ${paths.top}: the VM uses it ${devices.length + overlays.length} times (devices ${devices.join(', ') || 'none'}, overlays ${overlays.join(', ') || 'none'}); volmerge merges a volume with exactly one user`);
  }
  const active = devices.length === 1;
  const above = overlays[0];
  const { root, device } = rootOf(graph, top.format, paths.top, peer);
  const topBackingName = graph.node(top.format)?.image['backing-filename'];
  return {
    top,
    base,
    active,
    ...(above === undefined ? {} : { above: { format: above, storagePath: storagePathOf(graph, above) ?? '' } }),
    root,
    device,
    ...(topBackingName === undefined ? {} : { topBackingName }),
  };
}

/** The format and storage nodes that hold the volume at path. */
async function volumeIn(graph: LiveGraph, path: string, role: string, peer: string): Promise<LiveVolume> {
  const key = await volumeKey(path);
  if (!key) throw new VolmergeError('not-found', `${role} ${path}: no such file or device on this host`);
  const opened: string[] = [];
  const matches: { storage: string; storagePath: string; formats: string[] }[] = [];
  for (const node of graph.storageNodes()) {
    opened.push(node.file);
    if ((await volumeKey(node.file)) === key) {
      matches.push({ storage: node['node-name'], storagePath: node.file, formats: graph.formatNodesOver(node['node-name']) });
    }
  }
  const withFormat = matches.filter((match) => match.formats.length > 0);
  if (withFormat.length === 0) {
    const why = matches.length > 0 ? `open in the VM behind ${peer}, but not as an image (no format node over it)` : `not open in the VM behind ${peer} (it has ${opened.join(', ') || 'no volumes'} open)`;
    throw new VolmergeError('not-found', `${role} ${path}: ${why}; give the volume as the VM opened it`);
  }
  const formats = withFormat.flatMap((match) => match.formats.map((format) => ({ ...match, format })));
  const only = formats[0];
  if (formats.length > 1 || !only) {
    throw new VolmergeError('bad-chain', `${role} ${path}: the VM has it open ${formats.length} times (nodes ${formats.map((f) => f.format).join(', ')}); volmerge cannot tell which one to merge`);
  }
  const node = graph.node(only.format);
  if (node?.drv !== 'qcow2') throw new VolmergeError('not-qcow2', `${role} ${path}: the VM opens it as ${node?.drv ?? 'unknown'}, not qcow2`);
  return { path, format: only.format, storage: only.storage, storagePath: only.storagePath, bitmaps: node['dirty-bitmaps'] ?? [] };
}

/** The active layer above format and the device that writes to it. */
function rootOf(graph: LiveGraph, format: string, path: string, peer: string): { root: string; device: string } {
  const seen = new Set<string>();
  for (let node = format; !seen.has(node); ) {
    seen.add(node);
    const devices = graph.devicesOf(node);
    const device = devices[0];
    if (device !== undefined) return { root: node, device };
    const overlays = graph.overlaysOf(node);
    const next = overlays[0];
    if (next === undefined || overlays.length > 1) break;
    node = next;
  }
  throw new VolmergeError('bad-chain', `top ${path}: not in the chain of exactly one device of the VM behind ${peer}`);
}

/** The file name that the storage node under a format node opened. */
function storagePathOf(graph: LiveGraph, format: string): string | undefined {
  const storage = graph.child(format, 'file');
  return storage === undefined ? undefined : graph.node(storage)?.file;
}
