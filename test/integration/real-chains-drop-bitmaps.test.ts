// --drop-bitmaps with a qcow2 base: the bitmaps only top has are not copied (plan.drop names them); those base shares
// with top are merged as always, and stale ones pruned.
import { expect } from 'chai';
import { bitmapsIn, rawCopy } from '../helpers/images.js';
import { covers, dirtyExtents } from '../helpers/dirty-map.js';
import { buildLayoutChain, denseRanges, readsAs, scatteredRanges } from '../helpers/layout-chain.js';
import { expectDone, mergeJson } from '../helpers/merge-result.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('real chains: --drop-bitmaps with a qcow2 base', function () {
  this.timeout(60_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-drop-');

  it("drops top's own bitmaps, lists them under plan.drop, and keeps the shared ones", async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await buildLayoutChain(base, top, {
      virtualSize: 256 * MiB,
      baseData: denseRanges(0, 8 * MiB),
      stale: 2,
      shared: ['daily'],
      topOnly: ['incr-1', 'incr-2'],
      topData: [...denseRanges(32 * MiB, 16 * MiB), ...scatteredRanges(256 * MiB, 64, 64 * KiB)],
    });
    const raw = ws.path('before.raw');
    await rawCopy(top, raw);
    const daily = await dirtyExtents(top, 'daily');

    const plan = expectDone(await mergeJson(['--top', top, '--base', base, '--drop-bitmaps']));
    expect(plan.baseFormat).to.equal('qcow2');
    expect([...(plan.drop ?? [])].sort()).to.deep.equal(['incr-1', 'incr-2']);
    expect([...plan.prune].sort()).to.deep.equal(['stale0', 'stale1']);
    expect(plan.merge).to.deep.equal(['daily']);
    expect(await readsAs(base, 'qcow2', raw)).to.equal(true);
    const bitmaps = await bitmapsIn(base);
    expect(bitmaps.map((b) => `${b.name}:${b.flags.join('+')}`)).to.deep.equal(['daily:auto']);
    expect(covers(await dirtyExtents(base, 'daily'), daily), 'daily marks what it marked in top').to.equal(true);
  });
});
