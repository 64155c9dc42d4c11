// On real LVM: base LVs are extended to whole extents, once, and the merge keeps data and bitmaps.
import { expect } from 'chai';
import { bitmapsIn, makeChain, rawCopy, sameData } from '../helpers/images.js';
import { covers, dirtyExtents } from '../helpers/dirty-map.js';
import { volmerge } from '../helpers/cli.js';
import { TestVg } from '../helpers/lvm.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const MiB = 1024 * 1024;

interface Result {
  status: string;
  plan: { neededSize: number; baseSize: number; extendTo: number | null; prune: string[] };
}

describe('LVM: extending the base LV', function () {
  this.timeout(900_000);
  let vg: TestVg;
  let ws: Workspace;
  before(async () => {
    vg = await TestVg.create('2G', '8m');
  });
  after(async () => {
    await vg?.dispose();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh));

  it('extends a 128 MiB base under 200 MiB of data to whole extents, not more than one extent above the need, and only once', async () => {
    const base = await vg.lv('base', 128);
    const top = await vg.lv('top', 256);
    await makeChain(base, top, { virtualSize: '512M', stale: 6, shared: ['shared'], topOnly: ['toponly'], baseDataMiB: 8, topDataMiB: 200, topDataOffsetMiB: 4 });
    const raw = ws.path('before.raw');
    await rawCopy(top, raw);
    const marked = { shared: await dirtyExtents(top, 'shared'), toponly: await dirtyExtents(top, 'toponly') };
    const extent = await vg.extentSize();
    expect(extent).to.equal(8 * MiB);

    const first = await volmerge(['merge', '--top', top, '--base', base, '--json']);
    expect(first.exitCode, first.stderr).to.equal(0);
    const result = JSON.parse(first.stdout) as Result;
    expect(result.status).to.equal('done');
    expect(result.plan.baseSize).to.equal(128 * MiB);
    const extendTo = result.plan.extendTo;
    expect(extendTo).to.be.a('number');
    expect(extendTo! % extent, 'whole extents').to.equal(0);
    expect(extendTo!).to.be.at.least(result.plan.neededSize);
    expect(extendTo! - result.plan.neededSize).to.be.lessThan(extent);
    expect(await vg.lvSize('base')).to.equal(extendTo);

    expect(await sameData(base, raw)).to.equal(true);
    const bitmaps = await bitmapsIn(base);
    expect(bitmaps.map((b) => `${b.name}:${b.flags.join('+')}`).sort()).to.deep.equal(['shared:auto', 'toponly:auto']);
    expect(covers(await dirtyExtents(base, 'shared'), marked.shared)).to.equal(true);
    expect(covers(await dirtyExtents(base, 'toponly'), marked.toponly)).to.equal(true);

    const second = await volmerge(['merge', '--top', top, '--base', base, '--json']);
    expect(second.exitCode, second.stderr).to.equal(0);
    expect((JSON.parse(second.stdout) as Result).plan.extendTo, 'no second extension').to.equal(null);
    expect(await vg.lvSize('base')).to.equal(extendTo);
    expect(await sameData(base, raw)).to.equal(true);
  });

  it('adds the leaf room when asked, still in whole extents', async () => {
    const base = await vg.lv('base2', 128);
    const top = await vg.lv('top2', 256);
    await makeChain(base, top, { virtualSize: '512M', topOnly: ['t'], topDataMiB: 160 });
    const result = await volmerge(['merge', '--top', top, '--base', base, '--json', '--leaf-room', String(64 * MiB)]);
    expect(result.exitCode, result.stderr).to.equal(0);
    const plan = (JSON.parse(result.stdout) as Result).plan;
    expect(plan.extendTo! % (8 * MiB)).to.equal(0);
    expect(plan.extendTo!).to.be.at.least(plan.neededSize + 64 * MiB);
    expect(plan.extendTo! - (plan.neededSize + 64 * MiB)).to.be.lessThan(8 * MiB);
    expect(await vg.lvSize('base2')).to.equal(plan.extendTo);
  });
});
