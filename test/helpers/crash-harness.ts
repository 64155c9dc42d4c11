// Test harness for crash safety: chains with every kind of bitmap, a CLI merge run in its own process group (so a crash
// point can SIGKILL the whole group without touching the test runner), and the checks a merge must pass afterwards.
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import { bitmapsIn, makeChain, rawCopy, sameData } from './images.js';
import { covers, dirtyExtents, type Extent } from './dirty-map.js';
import type { Workspace } from './workspace.js';

const MiB = 1024 * 1024;

/** The valid top bitmaps the base must end up with, exactly. */
export const KEPT_BITMAPS = ['shared', 'toponly'];

/** A chain ready to be merged, with what it looked like before. */
export interface PreparedChain {
  top: string;
  base: string;
  raw: string;
  /** What each top bitmap marked before the merge. */
  before: Record<string, Extent[]>;
  /** Environment for the CLI: a state folder and a lock folder of this test. */
  env: Record<string, string>;
  stateDir: string;
}

/**
 * Makes a 256 MiB-virtual chain on files or on 128 MiB loop devices (or at the paths given): 2 stale, 1 shared, 1
 * top-only and 1 disabled bitmap; 32 MiB in top.
 */
export async function prepareChain(ws: Workspace, medium: 'file' | 'block', at?: { base: string; top: string }): Promise<PreparedChain> {
  const base = at?.base ?? (medium === 'file' ? ws.path('base.qcow2') : await ws.blockDevice('base', 128 * MiB));
  const top = at?.top ?? (medium === 'file' ? ws.path('top.qcow2') : await ws.blockDevice('top', 128 * MiB));
  await makeChain(base, top, {
    virtualSize: '256M',
    stale: 2,
    shared: ['shared'],
    topOnly: ['toponly'],
    topDisabled: ['off'],
    baseDataMiB: 4,
    topDataMiB: 32,
    topDataOffsetMiB: 2,
  });
  const raw = ws.path('before.raw');
  await rawCopy(top, raw);
  const before: Record<string, Extent[]> = {};
  for (const name of KEPT_BITMAPS) before[name] = await dirtyExtents(top, name);
  expect(before.toponly, 'top-only bitmap marks the data written to top').to.have.length.greaterThan(0);
  const stateDir = ws.path('state');
  const lockDir = ws.path('locks');
  await mkdir(stateDir, { recursive: true });
  return { top, base, raw, before, stateDir, env: { VOLMERGE_STATE_DIR: stateDir, VOLMERGE_LOCK_DIR: lockDir } };
}

/** Checks a finished merge: data as before, base's bitmaps exactly the valid top ones, none in-use, each covering what it marked in top. */
export async function expectMerged(chain: PreparedChain): Promise<void> {
  expect(await sameData(chain.base, chain.raw), 'base reads exactly as top did before').to.equal(true);
  const baseBitmaps = await bitmapsIn(chain.base);
  expect(baseBitmaps.map((b) => b.name).sort(), 'base keeps exactly the valid top bitmaps').to.deep.equal(KEPT_BITMAPS);
  for (const bitmap of baseBitmaps) expect(bitmap.flags, `base bitmap ${bitmap.name}`).to.deep.equal(['auto']);
  for (const name of KEPT_BITMAPS) {
    expect(covers(await dirtyExtents(chain.base, name), chain.before[name] ?? []), `base's ${name} marks what top's marked`).to.equal(true);
  }
  // Top is kept by a cold merge: its own bitmaps must have survived the crash too.
  const topBitmaps = await bitmapsIn(chain.top);
  expect(topBitmaps.map((b) => b.name).sort()).to.deep.equal(['off', 'shared', 'toponly']);
  for (const bitmap of topBitmaps) expect(bitmap.flags, `top bitmap ${bitmap.name}`).not.to.include('in-use');
  expect(topBitmaps.find((b) => b.name === 'off')?.flags, 'the disabled top bitmap stays disabled').to.deep.equal([]);
}
