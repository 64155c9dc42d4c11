// A disk grown after the snapshot, over a qcow2 base with bitmaps shared with top and stale ones: base ends with top's
// virtual size, its bitmaps valid and marking the writes made in the grown area; on a file and on a loop device.
import { expect } from 'chai';
import { bitmapsIn, rawCopy } from '../helpers/images.js';
import { covers, dirtyExtents, type Extent } from '../helpers/dirty-map.js';
import { buildLayoutChain, denseRanges, readsAs, scatteredRanges, type Range } from '../helpers/layout-chain.js';
import { expectDone, imageEndOffset, mergeJson, virtualSize } from '../helpers/merge-result.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BASE_SIZE = 256 * MiB;
const GROWN = 640 * MiB;
const KEPT = ['daily', 'incr', 'weekly'];

/** Writes in the area that exists only since the disk grew: a dense run, scattered pieces, and the very last cluster. */
const GROWN_AREA_WRITES: Range[] = [
  ...denseRanges(BASE_SIZE + 16 * MiB, 24 * MiB),
  ...scatteredRanges(GROWN - BASE_SIZE, 128, 64 * KiB, 64 * KiB).map((r) => ({ ...r, offset: BASE_SIZE + r.offset })),
  { offset: GROWN - 64 * KiB, length: 64 * KiB },
];

for (const medium of ['file', 'loop device'] as const) {
  describe(`real chains: a top grown after the snapshot, qcow2 base on a ${medium}`, function () {
    this.timeout(120_000);
    let ws: Workspace;
    before(async function () {
      if (medium === 'loop device' && !(await canUseLoopDevices())) this.skip();
    });
    freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-grown-');

    for (const layout of [{ name: 'default layout', options: {} }, { name: '128 KiB clusters + extended_l2', options: { clusterSize: 128 * KiB, extendedL2: true } }]) {
      it(`ends with top's virtual size and bitmaps covering the grown area (${layout.name})`, async () => {
        const base = medium === 'file' ? ws.path('base.qcow2') : await ws.blockDevice('base', 2 * GROWN);
        const top = ws.path('top.qcow2');
        await buildLayoutChain(base, top, {
          virtualSize: BASE_SIZE,
          layout: layout.options,
          baseData: denseRanges(0, 16 * MiB),
          stale: 3,
          shared: ['daily', 'weekly'],
          topOnly: ['incr'],
          growTo: GROWN,
          topData: [...denseRanges(4 * MiB, 8 * MiB), ...GROWN_AREA_WRITES],
        });
        const raw = ws.path('before.raw');
        await rawCopy(top, raw);
        const marked: Record<string, Extent[]> = {};
        for (const name of KEPT) marked[name] = await dirtyExtents(top, name);
        for (const name of KEPT) {
          expect(covers(marked[name] ?? [], GROWN_AREA_WRITES), `top's ${name} marks the grown area's writes before the merge`).to.equal(true);
        }

        const run = await mergeJson(['--top', top, '--base', base]);
        const plan = expectDone(run);
        expect([...plan.prune].sort()).to.deep.equal(['stale0', 'stale1', 'stale2']);
        expect(await virtualSize(base, 'qcow2'), "base has top's virtual size").to.equal(GROWN);
        expect(await readsAs(base, 'qcow2', raw), 'base reads as the chain did').to.equal(true);
        const bitmaps = await bitmapsIn(base);
        expect(bitmaps.map((b) => b.name).sort()).to.deep.equal(KEPT);
        for (const bitmap of bitmaps) expect(bitmap.flags, bitmap.name).to.deep.equal(['auto']);
        for (const name of KEPT) {
          const now = await dirtyExtents(base, name);
          expect(covers(now, marked[name] ?? []), `base's ${name} marks what top's marked`).to.equal(true);
          expect(covers(now, GROWN_AREA_WRITES), `base's ${name} marks the writes in the grown area`).to.equal(true);
        }
        const used = await imageEndOffset(base);
        expect(plan.neededSize, 'planned size covers what base uses, the larger L1 table and its bitmaps included').to.be.at.least(used);
        expect(plan.neededSize).to.be.at.most(1.1 * used + MiB);
        expect(run.json.usedSize).to.equal(used);
      });
    }
  });
}
