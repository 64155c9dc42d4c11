// Issue 13's sizing matrix: base in the layouts real platforms use, dense and scattered data in top, a top grown over a
// base with bitmaps; on files and on loop devices. Each cell: planned >= used, not far above it, data and bitmaps kept.
import { expect } from 'chai';
import { bitmapsIn, rawCopy } from '../helpers/images.js';
import { covers, dirtyExtents, type Extent } from '../helpers/dirty-map.js';
import { buildLayoutChain, denseRanges, readsAs, scatteredRanges, type BaseLayout, type LayoutChainSpec } from '../helpers/layout-chain.js';
import { expectDone, imageEndOffset, mergeJson, virtualSize } from '../helpers/merge-result.js';
import { sizingTable, type SizingRow } from '../helpers/sizing-table.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const LAYOUTS: { name: string; layout: BaseLayout }[] = [
  { name: 'cluster 512 B', layout: { clusterSize: 512 } },
  { name: 'cluster 4 KiB', layout: { clusterSize: 4 * KiB } },
  { name: 'cluster 64 KiB (defaults)', layout: {} },
  { name: 'cluster 128 KiB + extended_l2', layout: { clusterSize: 128 * KiB, extendedL2: true } },
  { name: 'cluster 2 MiB', layout: { clusterSize: 2 * MiB } },
  { name: 'refcount_bits 1', layout: { refcountBits: 1 } },
  { name: 'refcount_bits 64', layout: { refcountBits: 64 } },
  { name: 'compression_type zstd', layout: { compressionType: 'zstd' } },
];
const GROWN_LAYOUTS = [LAYOUTS[1], LAYOUTS[2], LAYOUTS[3]] as { name: string; layout: BaseLayout }[];

interface Cell {
  name: string;
  spec: LayoutChainSpec;
  /** Whether planned <= 1.1 * used + 1 MiB is asserted (clusters of 4 KiB and more). */
  bounded: boolean;
  grown: boolean;
}

/** The cells: every layout with dense data (base without bitmaps) and scattered data (base with bitmaps), and grown tops. */
function matrixCells(): Cell[] {
  const cells: Cell[] = [];
  for (const { name, layout } of LAYOUTS) {
    const bounded = (layout.clusterSize ?? 64 * KiB) >= 4 * KiB;
    const baseData = denseRanges(0, 16 * MiB);
    cells.push({ name: `${name}, dense 64 MiB`, bounded, grown: false, spec: { virtualSize: GiB, layout, baseData, topOnly: ['toponly'], topData: denseRanges(256 * MiB, 64 * MiB) } });
    // The issue's own case: 4096 scattered 64 KiB writes over a 128 KiB + extended_l2 base.
    const count = layout.extendedL2 ? 4096 : 1024;
    cells.push({
      name: `${name}, ${count} scattered 64 KiB, base bitmaps`,
      bounded,
      grown: false,
      spec: { virtualSize: GiB, layout, baseData, stale: 2, shared: ['shared'], topOnly: ['toponly'], topData: scatteredRanges(GiB, count, 64 * KiB, 64 * KiB) },
    });
  }
  for (const { name, layout } of GROWN_LAYOUTS) {
    cells.push({
      name: `${name}, top grown 512 MiB -> 1 GiB, 1024 scattered, base bitmaps`,
      bounded: true,
      grown: true,
      spec: {
        virtualSize: 512 * MiB,
        layout,
        baseData: denseRanges(0, 16 * MiB),
        stale: 2,
        shared: ['shared'],
        topOnly: ['toponly'],
        growTo: GiB,
        topData: scatteredRanges(GiB, 1024, 64 * KiB, 128 * KiB),
      },
    });
  }
  return cells;
}

const rows: SizingRow[] = [];

describe('real chains: sizing matrix (planned size against what base uses)', function () {
  this.timeout(300_000);
  after(() => {
    console.log(`\n${sizingTable('sizing matrix, planned = plan.neededSize, used = image-end-offset of base after the merge', rows)}\n`);
  });

  for (const medium of ['file', 'loop device'] as const) {
    describe(`base on a ${medium}`, () => {
      let ws: Workspace;
      before(async function () {
        if (medium === 'loop device' && !(await canUseLoopDevices())) this.skip();
      });
      freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-sizing-');

      for (const cell of matrixCells()) {
        it(cell.name, async () => {
          // A loop device of twice the virtual size (and more than any cell needs): running out of room fails the merge.
          const base = medium === 'file' ? ws.path('base.qcow2') : await ws.blockDevice('base', 2 * GiB + 64 * MiB);
          const top = ws.path('top.qcow2');
          await buildLayoutChain(base, top, cell.spec);
          const raw = ws.path('before.raw');
          await rawCopy(top, raw);
          const kept = [...(cell.spec.shared ?? []), ...(cell.spec.topOnly ?? [])].sort();
          const marked: Record<string, Extent[]> = {};
          if (cell.grown) for (const name of kept) marked[name] = await dirtyExtents(top, name);

          const run = await mergeJson(['--top', top, '--base', base]);
          const row: SizingRow = { cell: `${medium}: ${cell.name}`, planned: run.json.plan?.neededSize ?? null, used: null, bounded: cell.bounded };
          rows.push(row);
          if (run.cli.exitCode === 0) row.used = await imageEndOffset(base);
          else row.note = `failed: ${run.json.error?.code ?? run.cli.stderr.trim()}`;

          const plan = expectDone(run);
          const used = row.used as number;
          expect(plan.neededSize, 'planned size covers what base uses').to.be.at.least(used);
          if (cell.bounded) expect(plan.neededSize, 'planned size at most 10% + 1 MiB above what base uses').to.be.at.most(1.1 * used + MiB);
          expect(run.json.usedSize, 'usedSize is base image-end-offset').to.equal(used);
          expect(plan.baseFormat).to.equal('qcow2');
          expect(plan.drop, 'no bitmap dropped').to.deep.equal([]);
          expect(await readsAs(base, 'qcow2', raw), 'base reads as the chain did').to.equal(true);
          expect(await virtualSize(base, 'qcow2'), "base has top's virtual size").to.equal(cell.spec.growTo ?? cell.spec.virtualSize);
          const bitmaps = await bitmapsIn(base);
          expect(bitmaps.map((b) => b.name).sort(), 'base keeps exactly the valid top bitmaps').to.deep.equal(kept);
          for (const bitmap of bitmaps) expect(bitmap.flags, bitmap.name).to.deep.equal(['auto']);
          for (const name of Object.keys(marked)) {
            expect(covers(await dirtyExtents(base, name), marked[name] ?? []), `${name} marks every write, the grown area's too`).to.equal(true);
          }
        });
      }
    });
  }
});
