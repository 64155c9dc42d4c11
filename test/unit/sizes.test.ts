import { expect } from 'chai';
import { l1TableBytes, lvExtendTarget, measureOptions, persistentBitmapBytes, qcow2Needed, roundUp } from '../../src/merge/sizes.js';

describe('sizes', () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  const GiB = 1024 * MiB;
  const layout = { clusterSize: 64 * KiB, extendedL2: false, refcountBits: 16, compressionType: 'zlib' as const, version: 3 as const };
  it('rounds up to the extent size and leaves exact multiples alone', () => {
    expect(roundUp(1, 4 * MiB)).to.equal(4 * MiB);
    expect(roundUp(8 * MiB, 4 * MiB)).to.equal(8 * MiB);
    expect(roundUp(8 * MiB + 1, 4 * MiB)).to.equal(12 * MiB);
  });
  it('sizes persistent bitmaps as qemu-img measure does (measured: 3 bitmaps of a 1 GiB disk, 64 KiB clusters: 458752)', () => {
    const three = [{ name: 'sh1', granularity: 65536 }, { name: 'sh2', granularity: 65536 }, { name: 'toponly', granularity: 65536 }];
    expect(persistentBitmapBytes(three, GiB, 64 * KiB)).to.equal(458752);
    // Measured with 2 MiB clusters: 4 bitmaps of a 1 GiB disk take 18874368 bytes.
    expect(persistentBitmapBytes([...three, { name: 'sh3', granularity: 65536 }], GiB, 2 * MiB)).to.equal(18874368);
    expect(persistentBitmapBytes([], GiB, 64 * KiB)).to.equal(0);
  });
  it('gives measure base\'s own layout, and only version 3 options to a version 2 image', () => {
    expect(measureOptions({ ...layout, clusterSize: 128 * KiB, extendedL2: true })).to.equal('compat=1.1,cluster_size=131072,refcount_bits=16,extended_l2=on,compression_type=zlib');
    expect(measureOptions({ ...layout, version: 2 })).to.equal('compat=0.10,cluster_size=65536,refcount_bits=16');
  });
  it('sizes L1 tables with 8-byte L2 entries, 16 with extended L2', () => {
    expect(l1TableBytes(GiB, layout)).to.equal(16);
    expect(l1TableBytes(GiB, { clusterSize: 64 * KiB, extendedL2: true })).to.equal(32);
  });
  it('needs the larger of the compact image and base\'s end, plus a second copy of the bitmaps and two clusters', () => {
    const bitmaps = [{ name: 'b', granularity: 65536 }];
    const kept = persistentBitmapBytes(bitmaps, GiB, 64 * KiB);
    const small = qcow2Needed({ required: 100 * MiB, keptBitmaps: bitmaps, layout, baseEnd: 10 * MiB, baseVirtualSize: GiB, topVirtualSize: GiB });
    expect(small.needed).to.equal(100 * MiB + 2 * kept + 128 * KiB);
    const holes = qcow2Needed({ required: 100 * MiB, keptBitmaps: bitmaps, layout, baseEnd: 300 * MiB, baseVirtualSize: GiB, topVirtualSize: GiB });
    expect(holes.needed).to.equal(300 * MiB + kept + 128 * KiB);
  });
  it('sizes a base that already holds part of top (an interrupted live commit) from where it ends plus all of top', () => {
    const layout = { clusterSize: 65536, extendedL2: false, refcountBits: 16, compressionType: 'zlib' as const, version: 3 as const };
    const bitmaps = [{ name: 'shared', granularity: 65536 }];
    const input = { required: 36 * MiB, keptBitmaps: bitmaps, layout, baseEnd: 22 * MiB, baseVirtualSize: 256 * MiB, topVirtualSize: 256 * MiB };
    const compact = qcow2Needed(input);
    const partial = qcow2Needed({ ...input, partialTop: 32 * MiB });
    expect(partial.partialTop).to.equal(32 * MiB);
    expect(partial.needed).to.equal(22 * MiB + 32 * MiB + partial.bitmaps + partial.rewrite);
    expect(partial.needed).to.be.greaterThan(compact.needed);
    // A small remainder of top never sizes below the compact image.
    expect(qcow2Needed({ ...input, partialTop: MiB }).needed).to.equal(compact.needed);
  });
  it('adds the clusters base leaked (a commit killed with clusters in flight) to the compact image: no write reuses them', () => {
    // The figures of issue 21's chain (1 GiB top) after the kill: 224 leaked clusters, base's file ending at 748224512.
    const bitmaps = [{ name: 'shared', granularity: 65536 }, { name: 'toponly', granularity: 131072 }];
    const input = { required: 1074135040, keptBitmaps: bitmaps, layout, baseEnd: 748224512, baseVirtualSize: GiB, topVirtualSize: GiB };
    const before = qcow2Needed(input);
    expect(before.needed, 'what the resumed run planned before').to.equal(1074921472);
    const leaky = qcow2Needed({ ...input, leakedClusters: 224 });
    expect(leaky.leaked).to.equal(224 * 64 * KiB);
    expect(leaky.needed - before.needed).to.equal(224 * 64 * KiB);
    // What the resumed merge used before leaks were counted (1089339392) fits now; what was planned then did not.
    expect(before.needed).to.be.lessThan(1089339392);
    expect(leaky.needed).to.be.at.least(1089339392);
    // Counted as zero, the plan records it (it was looked for) and sizes as before; base's end still bounds it.
    expect(qcow2Needed({ ...input, leakedClusters: 0 })).to.deep.include({ leaked: 0, needed: before.needed });
    expect(qcow2Needed({ ...input, baseEnd: 1200 * MiB, leakedClusters: 224 }).needed).to.equal(1200 * MiB + leaky.rewrite);
  });

  it('extends only when the rounded target exceeds the LV, adding leaf room', () => {
    expect(lvExtendTarget(128 * MiB + 1, 0, 4 * MiB, 128 * MiB)).to.equal(128 * MiB + 4 * MiB);
    expect(lvExtendTarget(132710400, 0, 4 * MiB, 128 * MiB)).to.equal(null);
    expect(lvExtendTarget(100 * MiB, 0, 4 * MiB, 128 * MiB)).to.equal(null);
    expect(lvExtendTarget(126 * MiB, 8 * MiB, 4 * MiB, 128 * MiB)).to.equal(136 * MiB);
    expect(lvExtendTarget(126 * MiB, 0, 4 * MiB, 128 * MiB)).to.equal(null);
  });
});
