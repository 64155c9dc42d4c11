// Address resolution of vdsm's subchain_info: file domains on disk, block domains through a fake readLv, unsafe ids refused.
import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSafeId, resolveBlockSubchain, resolveSubchain, resolveVolumeAddress, type SubchainInfo } from '../../src/agent/address.js';
import { VolmergeError } from '../../src/errors.js';
import type { LvFacts } from '../../src/storage/lvm.js';
import { validatorFor } from '../../src/schema.js';

const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const OTHER_IMG = '9b2f3c1e-0000-4000-8000-000000000001';

function lv(vg: string, name: string, tags: string[]): LvFacts {
  return { vg, name, sizeBytes: 1 << 30, extentSize: 128 << 20, vgFree: 0, tags, lockType: '' };
}

/** A fake lvs: knows some LVs, says which were asked for. */
function fakeLvm(known: LvFacts[]): { readLv: (vg: string, name: string) => Promise<LvFacts>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    readLv: async (vg, name) => {
      asked.push(`${vg}/${name}`);
      const found = known.find((l) => l.vg === vg && l.name === name);
      if (!found) throw new VolmergeError('lv-missing', `${vg}/${name}: logical volume ${vg}/${name} does not exist`);
      return found;
    },
  };
}

const info = (overrides: Partial<SubchainInfo> = {}): SubchainInfo => ({ sd_id: 'sd1', img_id: IMG, top_id: 'top-vol', base_id: 'base-vol', ...overrides });

describe('agent address resolution', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'volmerge-address-'));
    await mkdir(join(root, 'sd1', 'images', IMG), { recursive: true });
    await writeFile(join(root, 'sd1', 'images', IMG, 'top-vol'), '');
    await writeFile(join(root, 'sd1', 'images', IMG, 'base-vol'), '');
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('finds a file domain volume at <root>/<sd_id>/images/<img_id>/<vol_id>, with a sidecar generation', async () => {
    const lvm = fakeLvm([]);
    const chain = await resolveSubchain(info(), { fileDomains: root, readLv: lvm.readLv });
    expect(chain).to.deep.equal({
      domain: 'file',
      top: join(root, 'sd1', 'images', IMG, 'top-vol'),
      base: join(root, 'sd1', 'images', IMG, 'base-vol'),
      generation: { kind: 'file', path: join(root, 'sd1', 'images', IMG, 'base-vol') },
    });
    expect(lvm.asked).to.deep.equal([]);
  });

  it('says which volume of a file domain is missing', async () => {
    const lvm = fakeLvm([]);
    await resolveSubchain(info({ base_id: 'gone' }), { fileDomains: root, readLv: lvm.readLv }).then(
      () => expect.fail('resolved'),
      (error: VolmergeError) => {
        expect(error.code).to.equal('not-found');
        expect(error.message).to.match(/base volume gone of image .* on domain sd1: .*gone does not exist/);
      },
    );
  });

  it('treats an sd_id without a file domain folder as a VG, with LVs named by volume id', async () => {
    const lvm = fakeLvm([lv('vgA', 'top-vol', [`IU_${IMG}`, 'MD_4']), lv('vgA', 'base-vol', [`IU_${IMG}`, 'PU_00000000'])]);
    const chain = await resolveSubchain(info({ sd_id: 'vgA' }), { fileDomains: root, readLv: lvm.readLv });
    expect(chain).to.deep.equal({ domain: 'block', top: '/dev/vgA/top-vol', base: '/dev/vgA/base-vol', generation: { kind: 'lv', vg: 'vgA', lv: 'base-vol' } });
    expect(lvm.asked).to.deep.equal(['vgA/top-vol', 'vgA/base-vol']);
  });

  it('accepts LVs without an IU_ tag, and refuses an LV tagged with another image', async () => {
    const untagged = fakeLvm([lv('vgA', 'top-vol', []), lv('vgA', 'base-vol', [])]);
    expect((await resolveBlockSubchain(info({ sd_id: 'vgA' }), untagged.readLv)).domain).to.equal('block');
    const foreign = fakeLvm([lv('vgA', 'top-vol', [`IU_${IMG}`]), lv('vgA', 'base-vol', [`IU_${OTHER_IMG}`])]);
    await resolveBlockSubchain(info({ sd_id: 'vgA' }), foreign.readLv).then(
      () => expect.fail('resolved'),
      (error: VolmergeError) => {
        expect(error.code).to.equal('not-in-image');
        expect(error.message).to.contain(`base volume vgA/base-vol belongs to image ${OTHER_IMG}, not ${IMG}`);
      },
    );
  });

  it('passes on the lvs classification of a missing LV', async () => {
    const lvm = fakeLvm([lv('vgA', 'top-vol', [])]);
    await resolveBlockSubchain(info({ sd_id: 'vgA' }), lvm.readLv).then(
      () => expect.fail('resolved'),
      (error: VolmergeError) => expect(error.code).to.equal('lv-missing'),
    );
  });

  it('refuses traversal, slashes, empty and odd ids before any lookup', async () => {
    const lvm = fakeLvm([]);
    for (const bad of ['..', '.', '', 'a/b', '../sd1', '-x', '.hidden', 'a b', 'x'.repeat(128), 'é']) {
      for (const key of ['sd_id', 'img_id', 'top_id', 'base_id'] as const) {
        await resolveSubchain(info({ [key]: bad }), { fileDomains: root, readLv: lvm.readLv }).then(
          () => expect.fail(`${key}=${bad} resolved`),
          (error: VolmergeError) => expect(error.code, `${key}=${JSON.stringify(bad)}`).to.equal('usage'),
        );
      }
    }
    expect(lvm.asked).to.deep.equal([]);
    expect(() => assertSafeId('top_id', 'a-b_c.d+e')).not.to.throw();
  });

  it('has schemas that refuse the same ids, and non-UUID image and job ids', () => {
    const validate = validatorFor('rpc-params-sdm-merge.schema.json');
    const good = { job_id: OTHER_IMG, subchain_info: info() };
    expect(validate(good)).to.equal(true);
    for (const [key, bad] of [
      ['sd_id', '..'],
      ['top_id', 'a/b'],
      ['base_id', ''],
      ['img_id', 'not-a-uuid'],
      ['img_id', `${IMG}x`],
    ] as const) {
      expect(validate({ ...good, subchain_info: { ...good.subchain_info, [key]: bad } }), `${key}=${bad}`).to.equal(false);
    }
    expect(validate({ ...good, job_id: '12345' })).to.equal(false);
    expect(validate({ ...good, extra: 1 })).to.equal(false);
    expect(validate({ ...good, subchain_info: { ...good.subchain_info, base_generation: -1 } })).to.equal(false);
    expect(validate({ ...good, subchain_info: { ...good.subchain_info, base_generation: 999 } }), "vdsm's last generation").to.equal(true);
    expect(validate({ ...good, subchain_info: { ...good.subchain_info, base_generation: 1000 } }), 'past vdsm 0..999').to.equal(false);
  });

  it('resolves one volume as SDM.merge resolves top and base: file domain, active LV of the image, nothing else', async () => {
    const none = fakeLvm([]);
    const file = await resolveVolumeAddress({ sd_id: 'sd1', img_id: IMG, vol_id: 'base-vol' }, { fileDomains: root, readLv: none.readLv });
    const path = join(root, 'sd1', 'images', IMG, 'base-vol');
    expect(file).to.deep.equal({ domain: 'file', path, generation: { kind: 'file', path } });
    await resolveVolumeAddress({ sd_id: 'sd1', img_id: OTHER_IMG, vol_id: 'base-vol' }, { fileDomains: root, readLv: none.readLv }).then(
      () => expect.fail('found a volume in another image'),
      (error: VolmergeError) => expect(error.code).to.equal('not-found'),
    );
    for (const bad of ['..', '', 'a/b', '.hidden']) {
      await resolveVolumeAddress({ sd_id: 'sd1', img_id: IMG, vol_id: bad }, { fileDomains: root, readLv: none.readLv }).then(
        () => expect.fail(`vol_id=${bad} resolved`),
        (error: VolmergeError) => expect(error.code).to.equal('usage'),
      );
    }
    expect(none.asked).to.deep.equal([]);

    const active = { ...lv('vgA', 'vol', [`IU_${IMG}`]), activeLocally: true };
    const block = await resolveVolumeAddress({ sd_id: 'vgA', img_id: IMG, vol_id: 'vol' }, { fileDomains: root, readLv: fakeLvm([active]).readLv });
    expect(block).to.deep.include({ domain: 'block', path: '/dev/vgA/vol', generation: { kind: 'lv', vg: 'vgA', lv: 'vol' } });
    await resolveVolumeAddress({ sd_id: 'vgA', img_id: OTHER_IMG, vol_id: 'vol' }, { readLv: fakeLvm([active]).readLv }).then(
      () => expect.fail('resolved an LV of another image'),
      (error: VolmergeError) => expect(error.code).to.equal('not-in-image'),
    );
    await resolveVolumeAddress({ sd_id: 'vgA', img_id: IMG, vol_id: 'vol' }, { readLv: fakeLvm([{ ...active, activeLocally: false }]).readLv }).then(
      () => expect.fail('resolved an inactive LV'),
      (error: VolmergeError) => expect(error.message).to.match(/not active on this host; activate it \(lvchange -ay vgA\/vol\)/),
    );
  });
});
