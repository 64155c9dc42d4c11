// Identities (src/storage/volume-identity.ts) and the decision "is the volume there now the recorded one"
// (src/storage/same-volume.ts): pure logic over identity strings, paths and times.
import { expect } from 'chai';
import { compareVolumes } from '../../src/storage/same-volume.js';
import { devOf } from '../../src/storage/identify.js';
import { parseLvTime } from '../../src/storage/lvm.js';
import { formatBlockIdentity, formatFileIdentity, formatLvIdentity, isStrongIdentity, liveKeyOf, parseIdentity } from '../../src/storage/volume-identity.js';

const BORN = 1_796_455_227_230_912_250n;
const bornMs = Number(BORN / 1_000_000n);
const at = (ms: number): string => new Date(ms).toISOString();

describe('volume identity', () => {
  it('writes and reads back every form, and keys locks by what two live volumes never share', () => {
    const cases: [string, string][] = [
      [formatFileIdentity({ dev: '65024', ino: '13', birthNs: String(BORN) }), 'file:65024:13'],
      [formatFileIdentity({ dev: '65024', ino: '13', generation: '1630489905' }), 'file:65024:13'],
      [formatFileIdentity({ dev: '65024', ino: '13' }), 'file:65024:13'],
      [formatLvIdentity('vg0', 'base', 'aBcD-12'), 'lv:vg0/base'],
      [formatBlockIdentity({ major: '7', minor: '3', loop: { offset: '0', backing: { kind: 'file', dev: '65024', ino: '99', birthNs: '5' } } }), 'block:7:3'],
      [formatBlockIdentity({ major: '253', minor: '4', dm: 'mpath-3600a0b80' }), 'block:253:4'],
    ];
    for (const [identity, live] of cases) {
      expect(parseIdentity(identity), identity).to.not.equal(undefined);
      expect(liveKeyOf(identity), identity).to.equal(live);
    }
    expect(cases.map(([identity]) => isStrongIdentity(identity))).to.deep.equal([true, true, false, true, true, true]);
    expect(parseIdentity('block:7:3:loop:512:file:65024:99:b5')).to.deep.equal({
      kind: 'block',
      major: '7',
      minor: '3',
      loop: { offset: '512', backing: { kind: 'file', dev: '65024', ino: '99', birthNs: '5' } },
    });
    expect(parseIdentity('nfs:whatever'), 'a form this release does not know').to.equal(undefined);
    expect(liveKeyOf('nfs:whatever')).to.equal('nfs:whatever');
  });

  it("turns losetup's MAJ:MIN into the st_dev that stat reports (glibc makedev)", () => {
    expect(devOf('     254:0  ')).to.equal('65024');
    expect(devOf('8:1')).to.equal('2049');
    expect(devOf('259:65536')).to.equal(String((259 << 8) | (65536 << 12)));
  });

  it("reads lv_time in LVM's default format and as seconds", () => {
    expect(parseLvTime('2026-12-05 07:00:00 +0100')).to.equal(Date.parse('2026-12-05T06:00:00Z'));
    expect(parseLvTime('1796455227')).to.equal(1_796_455_227_000);
    expect(parseLvTime('last Tuesday')).to.equal(undefined);
  });
});

describe('is the volume there now the recorded one', () => {
  const file = (ino: string, birth?: bigint, dev = '65024'): string => formatFileIdentity({ dev, ino, ...(birth !== undefined ? { birthNs: String(birth) } : {}) });

  it('files with birth times: the same inode born at another time is another file (a reused inode)', () => {
    expect(compareVolumes({ identity: file('13', BORN) }, { identity: file('13', BORN), realPath: '/a' }).verdict).to.equal('same');
    const reused = compareVolumes({ identity: file('13', BORN), realPath: '/a' }, { identity: file('13', BORN + 5_000_000_000n), realPath: '/a' });
    expect(reused.verdict).to.equal('other');
    expect(reused.verdict === 'other' && reused.reason).to.match(/inode was reused/);
    expect(compareVolumes({ identity: file('13', BORN) }, { identity: file('14', BORN), realPath: '/a' }).verdict).to.equal('other');
  });

  it('a file system mounted again (another device number): the same inode and birth at the same path is the same file, elsewhere not', () => {
    const recorded = { identity: file('13', BORN, '2049'), realPath: '/data/base' };
    const same = compareVolumes(recorded, { identity: file('13', BORN, '2050'), realPath: '/data/base' });
    expect(same.verdict).to.equal('same');
    expect(same.verdict === 'same' && same.note).to.match(/mounted again/);
    expect(compareVolumes(recorded, { identity: file('13', BORN, '2050'), realPath: '/other/base' }).verdict).to.equal('other');
  });

  it('files by inode generation where there is no birth time', () => {
    const gen = (g: string): string => formatFileIdentity({ dev: '2049', ino: '13', generation: g });
    expect(compareVolumes({ identity: gen('7') }, { identity: gen('7'), realPath: '/a' }).verdict).to.equal('same');
    expect(compareVolumes({ identity: gen('7') }, { identity: gen('8'), realPath: '/a' }).verdict).to.equal('other');
  });

  it("a journal of the current release (file:DEV:INO): a file born after the job began is another; one born before is the job's", () => {
    const recorded = { identity: 'file:65024:13', realPath: '/a', recordedAt: at(bornMs + 60_000) };
    expect(compareVolumes(recorded, { identity: file('13', BORN), realPath: '/a' }).verdict, 'the upgrade case').to.equal('same');
    expect(compareVolumes(recorded, { identity: file('13', BORN), realPath: '/renamed' }).verdict, 'existed then, so it is the one').to.equal('same');
    const later = compareVolumes({ ...recorded, recordedAt: at(bornMs - 60_000) }, { identity: file('13', BORN), realPath: '/a' });
    expect(later.verdict).to.equal('other');
    expect(later.verdict === 'other' && later.reason).to.match(/after the record was made/);
    expect(compareVolumes(recorded, { identity: file('14', BORN), realPath: '/a' }).verdict).to.equal('other');
  });

  it('a file system that gives neither: the same path is the same file (nothing tells otherwise); another path is unsure', () => {
    const recorded = { identity: 'file:65024:13', realPath: '/a', recordedAt: at(bornMs) };
    expect(compareVolumes(recorded, { identity: 'file:65024:13', realPath: '/a' }).verdict).to.equal('same');
    expect(compareVolumes(recorded, { identity: 'file:65024:13', realPath: '/b' }).verdict).to.equal('unsure');
  });

  it('LVs: by UUID; an LV of an earlier release by its creation time', () => {
    expect(compareVolumes({ identity: formatLvIdentity('vg', 'base', 'U1') }, { identity: formatLvIdentity('vg', 'base', 'U1'), realPath: '/dev/dm-3' }).verdict).to.equal('same');
    const again = compareVolumes({ identity: formatLvIdentity('vg', 'base', 'U1') }, { identity: formatLvIdentity('vg', 'base', 'U2'), realPath: '/dev/dm-3' });
    expect(again.verdict === 'other' && again.reason).to.match(/made again/);
    const earlier = { identity: 'lv:vg/base', recordedAt: at(1_000_000) };
    expect(compareVolumes(earlier, { identity: formatLvIdentity('vg', 'base', 'U2'), realPath: '/dev/dm-3', lvCreatedAtMs: 999_000 }).verdict).to.equal('same');
    expect(compareVolumes(earlier, { identity: formatLvIdentity('vg', 'base', 'U2'), realPath: '/dev/dm-3', lvCreatedAtMs: 1_001_000 }).verdict).to.equal('other');
  });

  it('loop devices: by backing file and offset; the same device over another file is another volume', () => {
    const loop = (ino: string, birth: bigint, offset = '0', minor = '3'): string =>
      formatBlockIdentity({ major: '7', minor, loop: { offset, backing: { kind: 'file', dev: '65024', ino, birthNs: String(birth) } } });
    expect(compareVolumes({ identity: loop('99', BORN) }, { identity: loop('99', BORN), realPath: '/dev/loop3' }).verdict).to.equal('same');
    const other = compareVolumes({ identity: loop('99', BORN) }, { identity: loop('100', BORN + 1n), realPath: '/dev/loop3' });
    expect(other.verdict === 'other' && other.reason).to.match(/attached to another file/);
    expect(compareVolumes({ identity: loop('99', BORN) }, { identity: loop('99', BORN, '512'), realPath: '/dev/loop3' }).verdict).to.equal('other');
    expect(compareVolumes({ identity: loop('99', BORN) }, { identity: 'block:7:3', realPath: '/dev/loop3' }).verdict, 'nothing attached now').to.equal('other');
    expect(compareVolumes({ identity: loop('99', BORN) }, { identity: loop('99', BORN, '0', '4'), realPath: '/dev/loop4' }).verdict, 'another device').to.equal('other');
    const earlier = { identity: 'block:7:3', recordedAt: at(bornMs - 1000) };
    expect(compareVolumes(earlier, { identity: loop('100', BORN), realPath: '/dev/loop3' }).verdict, 'a backing file born after the job began').to.equal('other');
    expect(compareVolumes({ ...earlier, recordedAt: at(bornMs + 1000) }, { identity: loop('99', BORN), realPath: '/dev/loop3' }).verdict).to.equal('same');
  });

  it('kinds never match across: a file is not a block device', () => {
    expect(compareVolumes({ identity: 'file:1:2' }, { identity: 'block:1:2', realPath: '/x' }).verdict).to.equal('other');
  });
});
