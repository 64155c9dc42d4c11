// On real LVM: 128 MiB LVs, ~126 MiB of data, N stale bitmaps: volmerge always ends with valid bitmaps.
import { expect } from 'chai';
import { bitmapsIn, makeChain, rawCopy, sameData } from '../helpers/images.js';
import { volmerge } from '../helpers/cli.js';
import { TestVg } from '../helpers/lvm.js';
import { Workspace } from '../helpers/workspace.js';

describe('LVM: stale bitmaps on 128 MiB LVs', function () {
  this.timeout(900_000);
  let vg: TestVg;
  let ws: Workspace;
  before(async () => {
    vg = await TestVg.create('2G', '4m');
  });
  after(async () => {
    await vg?.dispose();
  });
  beforeEach(async () => {
    ws = await Workspace.create();
  });
  afterEach(async () => {
    await ws?.dispose();
  });

  for (const stale of [6, 14, 32]) {
    it(`merges with ${stale} stale bitmaps and keeps the bitmap valid`, async () => {
      const base = await vg.lv(`base${stale}`, 128);
      const top = await vg.lv(`top${stale}`, 128);
      await makeChain(base, top, { stale, topOnly: ['good'], topDataMiB: 126 });
      const raw = ws.path('before.raw');
      await rawCopy(top, raw);
      const result = await volmerge(['merge', '--top', top, '--base', base, '--json']);
      expect(result.exitCode, result.stderr).to.equal(0);
      expect((JSON.parse(result.stdout) as { status: string }).status).to.equal('done');
      expect(await sameData(base, raw)).to.equal(true);
      expect((await bitmapsIn(base)).map((b) => `${b.name}:${b.flags.join('+')}`)).to.deep.equal(['good:auto']);
      await vg.removeLv(`top${stale}`);
      await vg.removeLv(`base${stale}`);
    });
  }
});
