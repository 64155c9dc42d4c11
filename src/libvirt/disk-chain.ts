// Finds top and base in a running domain's disks (from its live XML) and checks that the disk's chain really runs
// top -> base. Volumes are matched by what they are (device number, or file system and inode), so a symlink such as
// /dev/VG/LV or a relative path names the same volume as the path libvirt opened.
import { VolmergeError } from '../errors.js';
import { volumeKey } from '../live/identity.js';
import type { DiskLayer, DomainDisk, DomainFacts } from './domain-xml.js';
import { describeUri, type DomainRef } from './virsh.js';

/** One volume of the chain as libvirt holds it. */
export interface LibvirtVolume {
  /** The path as the caller gave it. */
  path: string;
  /** The path libvirt opened. */
  sourcePath: string;
  /** libvirt's backing index: the volume is `${target}[${index}]` in virsh's commands. */
  index: number;
  type: string;
}

/** top -> base in a domain's disk. */
export interface LibvirtChain {
  /** The domain's name and UUID (the UUID names it across renames; a journal keeps it). */
  domain: { name: string; uuid: string };
  /** The disk's target (vda). */
  target: string;
  top: LibvirtVolume;
  base: LibvirtVolume;
  /** True when top is the disk's active layer: an active commit, with a pivot. */
  active: boolean;
  /** The layer above top (internal merge): it ends backed by base. */
  above?: LibvirtVolume;
  /** Every layer of the disk, active first (its paths, for messages and for the bitmap rules below top). */
  layers: DiskLayer[];
}

/** `vda[3]`: how virsh names one layer of a disk. */
export function layerName(target: string, index: number): string {
  return `${target}[${index}]`;
}

/** The layer's path when it is a volume volmerge can open. */
function pathOf(layer: DiskLayer): string | undefined {
  return layer.type === 'file' || layer.type === 'block' ? layer.path : undefined;
}

/** Where the volume at path is among the disks' layers: [disk, layer position] pairs. */
async function placesOf(facts: DomainFacts, path: string): Promise<{ disk: DomainDisk; at: number }[]> {
  const key = await volumeKey(path);
  if (!key) return [];
  const places: { disk: DomainDisk; at: number }[] = [];
  for (const disk of facts.disks) {
    for (const [at, layer] of disk.layers.entries()) {
      const opened = pathOf(layer);
      if (opened !== undefined && (await volumeKey(opened)) === key) places.push({ disk, at });
    }
  }
  return places;
}

/** The volume at a position of a disk; 'bad-output' when libvirt gave it no index (a domain that does not run). */
function volumeAt(disk: DomainDisk, at: number, path: string, ref: DomainRef): LibvirtVolume {
  const layer = disk.layers[at];
  const sourcePath = layer ? pathOf(layer) : undefined;
  if (!layer || layer.index === undefined || sourcePath === undefined) {
    throw new VolmergeError('bad-output', `domain ${ref.domain}: libvirt gives ${path} in disk ${disk.target} no backing index; is the domain running?`);
  }
  return { path, sourcePath, index: layer.index, type: layer.type };
}

/** Finds top -> base in the domain's disks; clear errors naming the volume and the domain. */
export async function findDiskChain(facts: DomainFacts, ref: DomainRef, paths: { top: string; base: string }): Promise<LibvirtChain> {
  const where = `domain ${facts.name} (libvirt at ${describeUri(ref.uri)})`;
  if (!facts.running) throw new VolmergeError('vm-gone', `${where} is not running; a live merge needs it running (merge without --domain once it is shut off)`);
  for (const [role, path] of [['top', paths.top], ['base', paths.base]] as const) {
    if (!(await volumeKey(path))) throw new VolmergeError('not-found', `${role} ${path}: no such file or device on this host`);
  }
  const tops = await placesOf(facts, paths.top);
  if (tops.length === 0) {
    const opened = facts.disks.flatMap((disk) => disk.layers.map((layer) => layer.path ?? '?'));
    throw new VolmergeError('not-found', `top ${paths.top}: not in any disk of ${where} (it has ${opened.join(', ') || 'no disks'}); give the volume as the domain uses it`);
  }
  const [place, ...others] = tops;
  if (!place || others.length > 0) {
    throw new VolmergeError('bad-chain', `top ${paths.top}: ${where} uses it ${tops.length} times (${tops.map((t) => t.disk.target).join(', ')}); volmerge merges a volume with exactly one user`);
  }
  const { disk, at } = place;
  const below = disk.layers[at + 1];
  const baseKey = await volumeKey(paths.base);
  const belowPath = below ? pathOf(below) : undefined;
  if (!below || belowPath === undefined || (await volumeKey(belowPath)) !== baseKey) {
    const what = below ? (below.path ?? `a ${below.type} volume`) : 'nothing';
    throw new VolmergeError('bad-chain', `top ${paths.top}: in disk ${disk.target} of ${where} it is backed by ${what}, not by base ${paths.base}; give the volume right below top as base`);
  }
  if (disk.layers.slice(0, at + 2).some((layer) => layer.format !== undefined && layer.format !== 'qcow2')) {
    throw new VolmergeError('not-qcow2', `top ${paths.top}: disk ${disk.target} of ${where} opens a layer of this chain as other than qcow2; a live merge needs qcow2 top and base`);
  }
  const above = at > 0 ? disk.layers[at - 1] : undefined;
  return {
    domain: { name: facts.name, uuid: facts.uuid },
    target: disk.target,
    top: volumeAt(disk, at, paths.top, ref),
    base: volumeAt(disk, at + 1, paths.base, ref),
    active: at === 0,
    ...(above ? { above: volumeAt(disk, at - 1, above.path ?? '', ref) } : {}),
    layers: disk.layers,
  };
}

/** The disk with this target, or undefined when the domain no longer has it. */
export function diskOf(facts: DomainFacts, target: string): DomainDisk | undefined {
  return facts.disks.find((disk) => disk.target === target);
}

/** Whether the layer at sourcePath (as libvirt opened it) is still in the disk's chain; by volume too, when it exists. */
export async function diskHolds(disk: DomainDisk, sourcePath: string): Promise<boolean> {
  if (disk.layers.some((layer) => layer.path === sourcePath)) return true;
  const key = await volumeKey(sourcePath);
  for (const layer of disk.layers) {
    const opened = pathOf(layer);
    if (opened !== undefined && key !== undefined && (await volumeKey(opened)) === key) return true;
  }
  return false;
}
