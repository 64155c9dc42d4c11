import { expect } from 'chai';
import { checkAgainst, parseAgainst } from '../../src/schema.js';
import { fixture, jsonFixture } from './fixtures.js';

describe('schemas against recorded outputs', () => {
  it('accepts qemu-img info, info --backing-chain, measure and check as qemu-img 7.2 prints them', () => {
    expect(() => checkAgainst('qemu-img-info.schema.json', jsonFixture('qemu/info-base.json'), 'info')).not.to.throw();
    expect(() => checkAgainst('qemu-img-info.schema.json', jsonFixture('qemu/info-in-use.json'), 'info')).not.to.throw();
    expect(() => checkAgainst('qemu-img-info.schema.json', jsonFixture('qemu/info-raw.json'), 'info')).not.to.throw();
    expect(() => checkAgainst('qemu-img-info-chain.schema.json', jsonFixture('qemu/info-chain-top-base.json'), 'chain')).not.to.throw();
    expect(() => checkAgainst('qemu-img-measure.schema.json', jsonFixture('qemu/measure-subchain.json'), 'measure')).not.to.throw();
    expect(() => checkAgainst('qemu-img-measure.schema.json', jsonFixture('qemu/measure-raw.json'), 'measure')).not.to.throw();
    expect(() => checkAgainst('qemu-img-check.schema.json', jsonFixture('qemu/check-clean.json'), 'check')).not.to.throw();
    expect(() => parseAgainst('lvs.schema.json', fixture('lvm/lvs-lv.json'), 'lvs')).not.to.throw();
  });

  it("accepts losetup's list of one loop device as util-linux 2.38 prints it, and refuses one without a device number", () => {
    const recorded = parseAgainst<{ loopdevices: { 'back-ino': number; 'back-maj:min': string }[] }>('losetup.schema.json', fixture('loop/losetup-list.json'), 'losetup');
    expect(recorded.loopdevices[0]?.['back-ino']).to.equal(2147354);
    expect(recorded.loopdevices[0]?.['back-maj:min'].trim()).to.equal('254:0');
    expect(() => parseAgainst('losetup.schema.json', '{"loopdevices":[{"name":"/dev/loop0","back-maj:min":"two"}]}', 'losetup')).to.throw(/losetup/);
  });

  it('refuses output of the wrong shape with an error naming the command', () => {
    const broken = { ...jsonFixture<Record<string, unknown>>('qemu/info-base.json'), 'virtual-size': 'big' };
    expect(() => checkAgainst('qemu-img-info.schema.json', broken, 'qemu-img info /dev/vg/base'))
      .to.throw(/qemu-img info \/dev\/vg\/base printed JSON that does not match/)
      .with.property('code', 'bad-output');
    expect(() => parseAgainst('qemu-img-measure.schema.json', 'qemu-img: oops', 'qemu-img measure x'))
      .to.throw(/not JSON/)
      .with.property('code', 'bad-output');
    expect(() => parseAgainst('lvs.schema.json', '{"report":[{"lv":[{"lv_name":"a","vg_name":"b","lv_size":"12.5m"}]}]}', 'lvs')).to.throw(
      /does not match/,
    );
  });
});
