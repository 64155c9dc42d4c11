// Test helper: the chains the live-merge suites attach to a VM, a raw copy of what the guest sees, and the checks
// made after the VM has quit (data, bitmaps and what each bitmap marks).
import { expect } from 'chai';
import { basename, dirname } from 'node:path';
import { sh } from './commands.js';
import { covers, dirtyExtents, type Extent } from './dirty-map.js';
import { addBitmap, bitmapsIn, rawCopy, sameData, writeData } from './images.js';
import type { GuestWrite } from './live-vm.js';

const MiB = 1024 * 1024;

/** Where base's own data lies: 8 MiB at 0, written after its bitmaps were made (they mark it). */
export const BASE_DATA: Extent = { offset: 0, length: 8 * MiB };
/** Where top's data lies: 24 MiB at 4 MiB (over base's), written after top's bitmaps were made. */
export const TOP_DATA: Extent = { offset: 4 * MiB, length: 24 * MiB };
/** 4 MiB of top's data written before its bitmaps were made: no bitmap marks it, and none must after the merge. */
export const TOP_UNTRACKED: Extent = { offset: 64 * MiB, length: 4 * MiB };

/** A built chain, base first. */
export interface BuiltChain {
  base: string;
  top: string;
  /** The overlay above top (a three-volume chain for an internal merge). */
  leaf?: string;
  /** Paths in the VM's order: base first, the active layer last. */
  layers: string[];
}

/** Options of buildLiveChain. */
export interface ChainOptions {
  /** Put base on this path (a block device) instead of base.qcow2 in dir. */
  baseDevice?: string;
  /** Put top on this path (a block device, an LV) instead of top.qcow2 in dir. */
  topDevice?: string;
  /** Put the leaf on this path (a block device, an LV) instead of leaf.qcow2 in dir; implies leaf. */
  leafDevice?: string;
  /** Add a leaf above top: top becomes an inner volume. */
  leaf?: boolean;
  /** MiB of data in top (default 24, at 4 MiB). */
  topDataMiB?: number;
}

/**
 * Builds base (bitmaps stale0, stale1 and shared, then 8 MiB of 0x11) and top over it by a relative name when both are
 * files in dir, by base's path otherwise (TOP_UNTRACKED in 0x23, then bitmaps shared and toponly with 128 KiB
 * granularity, then top's data in 0x22); with leaf, a leaf over top named the same way (bitmap leafmap).
 */
export async function buildLiveChain(dir: string, options: ChainOptions = {}): Promise<BuiltChain> {
  const base = options.baseDevice ?? `${dir}/base.qcow2`;
  const top = options.topDevice ?? `${dir}/top.qcow2`;
  await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', base, '256M']);
  for (const name of ['stale0', 'stale1', 'shared']) await addBitmap(base, name);
  await writeData(base, 0, BASE_DATA.length / MiB, 0x11);
  // A relative backing name when both images are files in dir; the backing image's path otherwise.
  const nameOf = (image: string, over: string): string => (dirname(image) === dir && dirname(over) === dir ? basename(image) : image);
  await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', nameOf(base, top), '-F', 'qcow2', top]);
  await writeData(top, TOP_UNTRACKED.offset / MiB, TOP_UNTRACKED.length / MiB, 0x23);
  await addBitmap(top, 'shared');
  await addBitmap(top, 'toponly', { granularity: 128 * 1024 });
  await writeData(top, TOP_DATA.offset / MiB, options.topDataMiB ?? TOP_DATA.length / MiB, 0x22);
  if (!options.leaf && !options.leafDevice) return { base, top, layers: [base, top] };
  const leaf = options.leafDevice ?? `${dir}/leaf.qcow2`;
  await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', nameOf(top, leaf), '-F', 'qcow2', leaf]);
  await addBitmap(leaf, 'leafmap');
  return { base, top, leaf, layers: [base, top, leaf] };
}

/** A raw copy of what the active layer shows now (before the VM starts): the guest's disk as it begins. */
export async function guestView(chain: BuiltChain, raw: string): Promise<void> {
  await rawCopy(chain.layers[chain.layers.length - 1] ?? chain.top, raw);
}

/** Applies the guest's writes to the raw copy, so that it shows what the guest saw at the end. */
export async function applyWrites(raw: string, writes: readonly GuestWrite[]): Promise<void> {
  if (writes.length === 0) return;
  // One qemu-io for all of them, in order: a spawn costs seconds in the nested test VM.
  await sh(['qemu-io', '-f', 'raw', ...writes.flatMap((write) => ['-c', `write -P ${write.pattern} ${write.offset} ${write.length}`]), raw]);
}

/** Checks that image reads exactly as raw (qemu-img compare). */
export async function expectSameData(image: string, raw: string): Promise<void> {
  expect(await sameData(image, raw), `${image} reads as what the guest saw`).to.equal(true);
}

/** Checks base's bitmaps: exactly these names, each valid (auto only, not in-use), with the given granularities. */
export async function expectValidBitmaps(image: string, granularities: Record<string, number>): Promise<void> {
  const bitmaps = await bitmapsIn(image);
  expect(bitmaps.map((b) => b.name).sort()).to.deep.equal(Object.keys(granularities).sort());
  for (const bitmap of bitmaps) {
    expect(bitmap.flags, `flags of ${bitmap.name}`).to.deep.equal(['auto']);
    expect(bitmap.granularity, `granularity of ${bitmap.name}`).to.equal(granularities[bitmap.name]);
  }
}

/** Checks that bitmap name of image marks every extent given. */
export async function expectCovers(image: string, name: string, extents: readonly Extent[]): Promise<void> {
  const dirty = await dirtyExtents(image, name);
  for (const extent of extents) expect(covers(dirty, [extent]), `${name} covers ${extent.offset}+${extent.length}`).to.equal(true);
}

/** Checks that bitmap name of image marks nothing of extent. */
export async function expectMissing(image: string, name: string, extent: Extent): Promise<void> {
  const dirty = await dirtyExtents(image, name);
  const overlaps = dirty.filter((d) => d.offset < extent.offset + extent.length && extent.offset < d.offset + d.length);
  expect(overlaps, `${name} marks nothing of ${extent.offset}+${extent.length}`).to.deep.equal([]);
}

/** Checks, from one read of its dirty map, that bitmap name of image marks every extent of covered and nothing of missed. */
export async function expectMarks(image: string, name: string, marks: { covered: readonly Extent[]; missed?: readonly Extent[] }): Promise<void> {
  const dirty = await dirtyExtents(image, name);
  for (const extent of marks.covered) expect(covers(dirty, [extent]), `${name} covers ${extent.offset}+${extent.length}`).to.equal(true);
  for (const extent of marks.missed ?? []) {
    const overlaps = dirty.filter((d) => d.offset < extent.offset + extent.length && extent.offset < d.offset + d.length);
    expect(overlaps, `${name} marks nothing of ${extent.offset}+${extent.length}`).to.deep.equal([]);
  }
}

/** The guest's writes as extents. */
export function extentsOf(writes: readonly GuestWrite[]): Extent[] {
  return writes.map((write) => ({ offset: write.offset, length: write.length }));
}
