// Test harness for crash safety: chains with every kind of bitmap whose commit crosses an L2 table (so that a kill
// inside it leaves leaked clusters, as on real disks), a CLI merge run in its own process group (so that a crash point
// can SIGKILL the whole group without touching the test runner), a qemu-img that is killed in the middle of one of its
// writes, and the checks a merge must pass afterwards.
import { expect } from 'chai';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { bitmapsIn, expectCheckClean, makeChain, rawCopy, sameData } from './images.js';
import { covers, dirtyExtents, type Extent } from './dirty-map.js';
import type { Workspace } from './workspace.js';

const MiB = 1024 * 1024;

/** The valid top bitmaps the base must end up with, exactly. */
export const KEPT_BITMAPS = ['shared', 'toponly'];

/**
 * Where top's data lies: 32 MiB from 500 MiB, across the L2 table boundary at 512 MiB (64 KiB clusters). The commit's
 * first burst writes both sides of it: when qemu allocates the second L2 table it writes base's refcounts, which count
 * the clusters then in flight below 512 MiB, while the L2 entries that point at them stay in memory until the end. A
 * kill from then on (commit:during at any percent) leaves those clusters leaked, as it does on real disks every 512 MiB.
 */
export const TOP_DATA = { offsetMiB: 500, sizeMiB: 32 };

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

/** Where a chain lives: files, 128 MiB loop devices, or volumes made by the test (LVs). */
export type ChainMedium = 'file' | 'block' | { base: string; top: string };

/**
 * Makes a 1 GiB-virtual chain (see TOP_DATA): 2 stale, 1 shared, 1 top-only and 1 disabled bitmap; 4 MiB in base,
 * 32 MiB in top. `at` puts a file or block chain at the paths given (a loop device attached again, say).
 */
export async function prepareChain(ws: Workspace, medium: ChainMedium, at?: { base: string; top: string }): Promise<PreparedChain> {
  const onDevices = typeof medium === 'object' ? medium : at;
  const base = onDevices?.base ?? (medium === 'file' ? ws.path('base.qcow2') : await ws.blockDevice('base', 128 * MiB));
  const top = onDevices?.top ?? (medium === 'file' ? ws.path('top.qcow2') : await ws.blockDevice('top', 128 * MiB));
  await makeChain(base, top, {
    virtualSize: '1G',
    stale: 2,
    shared: ['shared'],
    topOnly: ['toponly'],
    topDisabled: ['off'],
    baseDataMiB: 4,
    topDataMiB: TOP_DATA.sizeMiB,
    topDataOffsetMiB: TOP_DATA.offsetMiB,
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

/**
 * Checks a finished merge: data as before, base's bitmaps exactly the valid top ones, none in-use, each covering what
 * it marked in top, top's bitmaps whole, and qemu-img check clean on both (no leaked cluster, no corruption).
 */
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
  await expectCheckClean(chain.base, 'base');
  await expectCheckClean(chain.top, 'top');
}

/**
 * A qemu-img wrapper for VOLMERGE_QEMU_IMG: the run whose argv contains CRASH_WRAP_MATCH is SIGKILLed at its
 * CRASH_WRAP_WRITE-th pwrite64 (strace's fault injection: a kill in the middle of a real write, as a power cut would
 * land), then the merge's whole process group is; every other run is qemu-img itself.
 */
export async function killingQemuImg(ws: Workspace): Promise<string> {
  const path = ws.path('qemu-img-killed-mid-write');
  await writeFile(
    path,
    [
      '#!/bin/bash',
      'if [[ " $* " == *" $CRASH_WRAP_MATCH "* ]]; then',
      '  strace -f -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=SIGKILL:when="$CRASH_WRAP_WRITE" qemu-img "$@"',
      '  kill -KILL -- -"$(ps -o pgid= $$ | tr -d " ")"',
      'fi',
      'exec qemu-img "$@"',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return path;
}
