// Test harness for the end of a merge: a chain base <- top <- child with data and bitmaps in all three, raw copies of what
// child and top showed before, and the checks an internal merge must pass afterwards.
import { expect } from 'chai';
import { mkdir, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { covers, dirtyExtents, type Extent } from './dirty-map.js';
import { sh } from './commands.js';
import { addBitmap, bitmapsIn, expectCheckClean, makeChain, rawCopy, sameData, writeData } from './images.js';
import type { Workspace } from './workspace.js';

/** The bitmaps base must end up with, exactly (as in a plain merge). */
export const KEPT = ['shared', 'toponly'];

/** A three-volume chain ready for an internal merge. */
export interface InternalChain {
  base: string;
  top: string;
  child: string;
  /** What child showed before (its whole chain), and what top showed. */
  rawChild: string;
  rawTop: string;
  /** What each kept top bitmap marked before. */
  before: Record<string, Extent[]>;
  env: Record<string, string>;
  stateDir: string;
}

/** The qemu-img info fields the checks read. */
interface Info {
  'backing-filename'?: string;
  'full-backing-filename'?: string;
}

/** qemu-img info of an image (-U: also while something holds it). */
export async function infoOf(image: string): Promise<Info> {
  return JSON.parse(await sh(['qemu-img', 'info', '--output', 'json', '-U', '-f', 'qcow2', image])) as Info;
}

/** Where an image's backing file resolves to. */
export async function backingOf(image: string): Promise<string | undefined> {
  const full = (await infoOf(image))['full-backing-filename'];
  return full ? realpath(full).catch(() => full) : undefined;
}

/**
 * base (4 MiB of data, a stale and a shared bitmap) <- top (8 MiB at 2 MiB, shared, toponly and a disabled bitmap)
 * <- child (4 MiB at 6 MiB over top's data, bitmap childbm), 128 MiB virtual, files in one folder; with relative
 * backing names as vdsm writes them when `relative` is set. Volumes on devices are given as paths that exist.
 * skipBitmapContents leaves `before` empty (reading bitmap contents through qemu-nbd is slow under TCG emulation).
 */
export async function prepareInternalChain(
  ws: Workspace,
  options: { relative?: boolean; volumes?: { base: string; top: string; child: string }; skipBitmapContents?: boolean } = {},
): Promise<InternalChain> {
  const { base, top, child } = options.volumes ?? { base: ws.path('base.qcow2'), top: ws.path('top.qcow2'), child: ws.path('child.qcow2') };
  await makeChain(base, top, { virtualSize: '128M', stale: 1, shared: ['shared'], topOnly: ['toponly'], topDisabled: ['off'], baseDataMiB: 4, topDataMiB: 8, topDataOffsetMiB: 2 });
  await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', top, '-F', 'qcow2', child]);
  if (options.relative) {
    await sh(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', basename(base), top]);
    await sh(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', basename(top), child]);
  }
  await addBitmap(child, 'childbm');
  await writeData(child, 6, 4, 0x77);
  const rawChild = ws.path('child-before.raw');
  const rawTop = ws.path('top-before.raw');
  await rawCopy(child, rawChild);
  await rawCopy(top, rawTop);
  const before: Record<string, Extent[]> = {};
  if (!options.skipBitmapContents) for (const name of KEPT) before[name] = await dirtyExtents(top, name);
  const stateDir = ws.path('state');
  await mkdir(stateDir, { recursive: true });
  return { base, top, child, rawChild, rawTop, before, stateDir, env: { VOLMERGE_STATE_DIR: stateDir, VOLMERGE_LOCK_DIR: ws.path('locks') } };
}

/** Checks a finished internal merge: child reads as before and is backed by base, base holds top's data and the kept bitmaps. */
export async function expectInternalMerged(chain: InternalChain): Promise<void> {
  expect(await backingOf(chain.child), 'child is backed by base').to.equal(await realpath(chain.base));
  expect(await sameData(chain.child, chain.rawChild), 'child reads exactly as before').to.equal(true);
  expect(await sameData(chain.base, chain.rawTop), 'base reads as top did').to.equal(true);
  const baseBitmaps = await bitmapsIn(chain.base);
  expect(baseBitmaps.map((b) => b.name).sort(), 'base keeps exactly the valid top bitmaps').to.deep.equal(KEPT);
  for (const bitmap of baseBitmaps) expect(bitmap.flags, `base bitmap ${bitmap.name}`).to.deep.equal(['auto']);
  for (const name of KEPT) expect(covers(await dirtyExtents(chain.base, name), chain.before[name] ?? []), `base's ${name} marks what top's marked`).to.equal(true);
  const childBitmaps = await bitmapsIn(chain.child);
  expect(childBitmaps.map((b) => `${b.name}:${b.flags.join('+')}`), "child's own bitmap is untouched").to.deep.equal(['childbm:auto']);
  await expectCheckClean(chain.base, 'base');
  await expectCheckClean(chain.child, 'child');
}

/** Checks that the chain child -> top -> base is as before the merge was tried: child backed by top, reading the same. */
export async function expectChainAsBefore(chain: InternalChain): Promise<void> {
  expect(await backingOf(chain.child), 'child still backed by top').to.equal(await realpath(chain.top));
  expect(await sameData(chain.child, chain.rawChild), 'child reads exactly as before').to.equal(true);
  expect(await sameData(chain.top, chain.rawTop), 'top reads exactly as before').to.equal(true);
}
