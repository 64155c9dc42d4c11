// Volume.getInfo and the generation on a block domain (real LVM; npm run test:lvm runs it, in the test VM where
// device-mapper is missing): LV sizes, the parent named by the backing file, legality from the retired tag, and a
// generation tag that wraps from 999 to 0 and counts on.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { agentMethods } from '../../src/agent/methods.js';
import { handleBody } from '../../src/agent/rpc.js';
import { JobRegistry } from '../../src/agent/registry.js';
import { bumpGeneration } from '../../src/storage/generation.js';
import { readLv } from '../../src/storage/lvm.js';
import { validatorFor } from '../../src/schema.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn, makeChain } from '../helpers/images.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';

const MiB = 1024 * 1024;
const BLANK_UUID = '00000000-0000-0000-0000-000000000000';

async function lvTags(vg: string, lv: string): Promise<string[]> {
  const out = await sh(['lvs', '--noheadings', '-o', 'lv_tags', `${vg}/${lv}`]);
  return out.trim().split(',').filter((t) => t.length > 0);
}

describe('LVM: Volume.getInfo and generations on a block domain', function () {
  this.timeout(900_000);
  let vg: TestVg | undefined;

  before(async function () {
    if (!(await hasDeviceMapper())) this.skip();
    vg = await TestVg.create('1G', '4m');
  });
  after(async () => {
    await vg?.dispose();
  });

  it('describes LVs with their sizes, parent, legality and generation, and wraps a generation tag from 999 to 0', async () => {
    if (!vg) throw new Error('no VG');
    const img = randomUUID();
    const ids = { base: randomUUID(), top: randomUUID(), stranger: randomUUID() };
    const base = await vg.lv(ids.base, 64, [`IU_${img}`]);
    const top = await vg.lv(ids.top, 32, [`IU_${img}`, `PU_${ids.base}`]);
    await vg.lv(ids.stranger, 8, [`IU_${randomUUID()}`]);
    await makeChain(base, top, { virtualSize: '128M', shared: ['shared'], topDataMiB: 4 });
    const methods = agentMethods({ registry: new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000 }), stateDir: '/nonexistent', version: 'test', readLv });
    const getInfo = async (volId: string, imgId = img): Promise<{ result?: Record<string, unknown>; error?: { code: number; message: string } }> =>
      JSON.parse((await handleBody(JSON.stringify({ jsonrpc: '2.0', method: 'Volume.getInfo', params: { sd_id: vg?.name, img_id: imgId, vol_id: volId }, id: 1 }), methods)) ?? '{}') as {
        result?: Record<string, unknown>;
      };

    const topInfo = (await getInfo(ids.top)).result ?? expect.fail('no info');
    expect(validatorFor('rpc-result-volume-get-info.schema.json')(topInfo), JSON.stringify(topInfo)).to.equal(true);
    expect(topInfo).to.deep.include({
      uuid: ids.top,
      domain: vg.name,
      image: img,
      parent: ids.base,
      format: 'COW',
      capacity: 128 * MiB,
      apparentsize: 32 * MiB,
      truesize: 32 * MiB,
      legality: 'LEGAL',
      status: 'OK',
      generation: 0,
    });
    expect(topInfo.bitmaps).to.deep.equal(await bitmapsIn(top));
    expect(((await getInfo(ids.base)).result ?? {}).parent).to.equal(BLANK_UUID);
    expect((await getInfo(ids.stranger)).error?.code, 'an LV of another image').to.equal(920);

    await sh(['lvchange', '--addtag', 'VOLMERGE_RETIRED_job1', `${vg.name}/${ids.top}`]);
    expect((await getInfo(ids.top)).result).to.deep.include({ legality: 'ILLEGAL', status: 'ILLEGAL' });

    const holder = { kind: 'lv' as const, vg: vg.name, lv: ids.base };
    await sh(['lvchange', '--addtag', 'VOLMERGE_GEN_999', `${vg.name}/${ids.base}`]);
    expect((await getInfo(ids.base)).result?.generation).to.equal(999);
    expect(await bumpGeneration(holder, 999)).to.equal(0);
    expect(await lvTags(vg.name, ids.base), 'generation 0 is no tag').to.deep.equal([`IU_${img}`]);
    expect((await getInfo(ids.base)).result?.generation).to.equal(0);
    expect(await bumpGeneration(holder, 0)).to.equal(1);
    expect((await lvTags(vg.name, ids.base)).sort()).to.deep.equal([`IU_${img}`, 'VOLMERGE_GEN_1']);

    await sh(['lvchange', '-an', `${vg.name}/${ids.top}`]);
    expect((await getInfo(ids.top)).error?.message).to.contain('not active on this host');
  });
});
