import { expect } from 'chai';
import { planMerge, type PlanInput } from '../../src/merge/plan.js';
import { planSummary } from '../../src/cli/plan-summary.js';
import { VolmergeError } from '../../src/errors.js';
import type { ImageInfo } from '../../src/qemu/types.js';
import type { Volume } from '../../src/storage/volume.js';
import { jsonFixture } from './fixtures.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const [topInfo, baseInfo] = jsonFixture<ImageInfo[]>('qemu/info-chain-top-base.json') as [ImageInfo, ImageInfo];
// A top with about 200 MiB of data over a 128 MiB base LV (default layout, 1 GiB disk).
const measure = { required: 210829312, 'fully-allocated': 1074135040, bitmaps: 196608 };
const layout = { clusterSize: 64 * KiB, extendedL2: false, refcountBits: 16, compressionType: 'zlib' as const, version: 3 as const };
// Kept bitmaps shared (64 KiB granularity) and toponly (128 KiB): one data and one table cluster each, one directory cluster.
const keptBitmaps = 5 * 64 * KiB;
// Needed: the measure, the kept bitmaps, a second copy of them while qemu rewrites them, and two clusters.
const needed = 210829312 + keptBitmaps + keptBitmaps + 2 * 64 * KiB;

function lvVolume(sizeBytes: number, vgFree: number): Volume {
  return {
    kind: 'lv',
    path: '/dev/storage/base',
    realPath: '/dev/dm-1',
    driver: 'host_device',
    sizeBytes,
    identity: 'lv:storage/base',
    lv: { vg: 'storage', name: 'base', sizeBytes, extentSize: 4 * MiB, vgFree, tags: [], lockType: '' },
  };
}
const fileTop: Volume = { kind: 'file', path: 'top', realPath: '/t', driver: 'file', sizeBytes: 1, identity: 'f:1' };

function input(base: Volume, extra: Partial<PlanInput> = {}): PlanInput {
  return { top: fileTop, base, topInfo, baseInfo, baseFormat: 'qcow2', baseLayout: layout, measure, baseEnd: 4 * MiB, leafRoom: 0, ...extra };
}

describe('planMerge', () => {
  it('sizes a qcow2 base from the measure in its layout plus its kept bitmaps twice, and extends the LV to whole extents', () => {
    const plan = planMerge(input(lvVolume(128 * MiB, 1024 * MiB)));
    expect(plan.neededSize).to.equal(needed);
    expect(plan.sizing).to.include({ required: 210829312, bitmaps: keptBitmaps, baseEnd: 4 * MiB, growth: 0 });
    expect(plan.extendTo).to.equal(204 * MiB);
    expect(planSummary(plan)).to.deep.equal({
      baseFormat: 'qcow2',
      neededSize: needed,
      baseSize: 128 * MiB,
      extendTo: 204 * MiB,
      prune: ['stale1'],
      add: ['toponly'],
      merge: ['shared', 'toponly'],
      drop: [],
    });
  });

  it('never plans less than where base ends now (a base with holes or preallocated metadata)', () => {
    const plan = planMerge(input(lvVolume(512 * MiB, 0), { baseEnd: 400 * MiB }));
    expect(plan.neededSize).to.equal(400 * MiB + keptBitmaps + 2 * 64 * KiB);
    expect(plan.extendTo).to.equal(null);
  });

  it('leaves room for the old L1 table when top grew past base', () => {
    const grown = { ...topInfo, 'virtual-size': 4 * 1024 * MiB };
    const plan = planMerge(input(lvVolume(1024 * MiB, 0), { topInfo: grown }));
    // A 1 GiB disk's L1 table (16 bytes) takes one cluster; one cluster more for the refcount table.
    expect(plan.sizing?.growth).to.equal(2 * 64 * KiB);
    expect(plan.topVirtualSize).to.equal(4 * 1024 * MiB);
  });

  it('refuses when the VG lacks the free space, naming the VG and the bytes planned', () => {
    expect(() => planMerge(input(lvVolume(128 * MiB, 0))))
      .to.throw(VolmergeError, new RegExp(`\\(${needed} bytes planned\\) but volume group storage has only 0 bytes free`))
      .with.property('code', 'no-space');
  });

  it('refuses a fixed block device that is too small and says how many bytes it needs', () => {
    const block: Volume = { kind: 'block', path: '/dev/loop9', realPath: '/dev/loop9', driver: 'host_device', sizeBytes: 128 * MiB, identity: 'b' };
    expect(() => planMerge(input(block)))
      .to.throw(VolmergeError, new RegExp(`needs ${needed} bytes`))
      .with.property('code', 'too-small');
  });

  it('does not extend an LV that is big enough already', () => {
    expect(planMerge(input(lvVolume(256 * MiB, 0))).extendTo).to.equal(null);
  });

  it('never extends a file', () => {
    const file: Volume = { kind: 'file', path: 'b', realPath: '/b', driver: 'file', sizeBytes: 1000, identity: 'f:2', fsFreeBytes: 10 ** 12 };
    expect(planMerge(input(file)).extendTo).to.equal(null);
  });

  it('drops top-only bitmaps with dropBitmaps, still merging the one base shares', () => {
    const plan = planMerge(input(lvVolume(256 * MiB, 0), { dropBitmaps: true }));
    expect(planSummary(plan)).to.include.keys('drop');
    expect(plan.bitmaps.merge).to.deep.equal(['shared']);
    expect(plan.bitmaps.add).to.deep.equal([]);
    expect(plan.bitmaps.drop).to.deep.equal(['toponly']);
    expect(plan.bitmaps.prune).to.deep.equal(['stale1']);
  });

  describe('raw base', () => {
    const rawInfo: ImageInfo = { filename: '/dev/storage/base', format: 'raw', 'virtual-size': 1024 * MiB };
    const raw = (base: Volume, extra: Partial<PlanInput> = {}): PlanInput => ({ top: fileTop, base, topInfo, baseInfo: rawInfo, baseFormat: 'raw', leafRoom: 0, ...extra });

    it("refuses top's valid bitmaps with bitmaps-unsupported, naming them", () => {
      expect(() => planMerge(raw(lvVolume(1024 * MiB, 0))))
        .to.throw(VolmergeError, /is raw and cannot hold bitmaps, and top top has bitmap shared, toponly; merge with --drop-bitmaps/)
        .with.property('code', 'bitmaps-unsupported');
    });

    it('drops them with dropBitmaps and needs only top\'s virtual size: no extension of an LV that holds it', () => {
      const plan = planMerge(raw(lvVolume(1024 * MiB, 0), { dropBitmaps: true }));
      expect(plan.neededSize).to.equal(1024 * MiB);
      expect(plan.extendTo).to.equal(null);
      expect(planSummary(plan)).to.deep.include({ baseFormat: 'raw', prune: [], add: [], merge: [], drop: ['shared', 'toponly'] });
    });

    it('extends a raw LV to a grown top in whole extents, and refuses a raw block device smaller than top', () => {
      const grown = { ...topInfo, 'virtual-size': 1024 * MiB + 1 };
      expect(planMerge(raw(lvVolume(1024 * MiB, 64 * MiB), { dropBitmaps: true, topInfo: grown })).extendTo).to.equal(1028 * MiB);
      const block: Volume = { kind: 'block', path: '/dev/loop9', realPath: '/dev/loop9', driver: 'host_device', sizeBytes: 1024 * MiB, identity: 'b' };
      expect(() => planMerge(raw(block, { dropBitmaps: true, topInfo: grown })))
        .to.throw(VolmergeError, /needs 1073741825 bytes \(1 more\)/)
        .with.property('code', 'too-small');
    });
  });

  it('treats a qcow2 version 2 base like raw for bitmaps: it cannot store them', () => {
    expect(() => planMerge(input(lvVolume(256 * MiB, 0), { baseLayout: { ...layout, version: 2 } })))
      .to.throw(VolmergeError)
      .with.property('code', 'bitmaps-unsupported');
  });
});
