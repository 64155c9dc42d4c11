import { expect } from 'chai';
import { classifyLvsFailure, lvFactsFromRow } from '../../src/storage/lvm.js';
import { splitDmName } from '../../src/storage/dm-name.js';
import { isLvmUuid, splitRdev } from '../../src/storage/sysfs.js';
import { fixture, jsonFixture } from './fixtures.js';

describe('LVM parsing', () => {
  it('tells a missing VG, a missing LV and a failed lvs apart (recorded stderr)', () => {
    expect(classifyLvsFailure(fixture('lvm/lvs-vg-missing.stderr'))).to.equal('vg-missing');
    expect(classifyLvsFailure(fixture('lvm/lvs-lv-missing.stderr'))).to.equal('lv-missing');
    expect(classifyLvsFailure('  /dev/mapper/control: open failed: No such device\n')).to.equal('lvm-failed');
    expect(classifyLvsFailure('')).to.equal('lvm-failed');
  });
  it('reads sizes in bytes and tags from the lvs JSON report', () => {
    const report = jsonFixture<{ report: { lv: Record<string, string>[] }[] }>('lvm/lvs-lv.json');
    const facts = lvFactsFromRow(report.report[0]!.lv[0]!);
    expect(facts).to.include({ vg: 'storage', name: 'base', sizeBytes: 134217728, extentSize: 4194304, vgFree: 947912704 });
    expect(facts.tags).to.have.length(2);
    expect(facts.tags[0]).to.match(/^IU_/);
  });
  it('splits device-mapper names with doubled dashes', () => {
    expect(splitDmName('storage-base')).to.deep.equal({ vg: 'storage', lv: 'base' });
    expect(splitDmName('my--vg-lv--1')).to.deep.equal({ vg: 'my-vg', lv: 'lv-1' });
    expect(splitDmName('nodash')).to.equal(undefined);
  });
  it('decodes device numbers and recognises LVM uuids', () => {
    expect(splitRdev(0x0701)).to.deep.equal({ major: 7, minor: 1 });
    expect(splitRdev(0xfd00)).to.deep.equal({ major: 253, minor: 0 });
    expect(isLvmUuid('LVM-abc')).to.equal(true);
    expect(isLvmUuid('CRYPT-abc')).to.equal(false);
    expect(isLvmUuid(undefined)).to.equal(false);
  });
});

describe('/dev/VG/LV paths', () => {
  it('reads VG and LV names from /dev/VG/LV but not from udev folders', async () => {
    const { lvNamesOfDevPath } = await import('../../src/storage/volume.js');
    expect(lvNamesOfDevPath('/dev/storage/base')).to.deep.equal({ vg: 'storage', lv: 'base' });
    expect(lvNamesOfDevPath('/dev/mapper/storage-base')).to.equal(undefined);
    expect(lvNamesOfDevPath('/dev/loop0')).to.equal(undefined);
    expect(lvNamesOfDevPath('/tmp/a/b')).to.equal(undefined);
  });
});
