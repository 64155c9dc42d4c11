import { expect } from 'chai';
import { planMerge, planSummary } from '../../src/merge/plan.js';
import { VolmergeError } from '../../src/errors.js';
import type { ImageInfo } from '../../src/qemu/types.js';
import type { Volume } from '../../src/storage/volume.js';
import { jsonFixture } from './fixtures.js';

const MiB = 1024 * 1024;
const [topInfo, baseInfo] = jsonFixture<ImageInfo[]>('qemu/info-chain-top-base.json') as [ImageInfo, ImageInfo];
// A top with about 200 MiB of data over a 128 MiB base LV.
const measure = { required: 210829312, 'fully-allocated': 1074135040, bitmaps: 196608 };
const needed = 210829312 + 196608;

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

describe('planMerge', () => {
  it('extends a 128 MiB LV to the needed size rounded up to one extent, and lists bitmaps', () => {
    const plan = planMerge({ top: fileTop, base: lvVolume(128 * MiB, 1024 * MiB), topInfo, baseInfo, measure, leafRoom: 0 });
    expect(plan.extendTo).to.equal(204 * MiB);
    expect(plan.extendTo! % (4 * MiB)).to.equal(0);
    expect(plan.extendTo! - plan.neededSize).to.be.lessThan(4 * MiB);
    expect(planSummary(plan)).to.deep.equal({
      neededSize: needed,
      baseSize: 128 * MiB,
      extendTo: 204 * MiB,
      prune: ['stale1'],
      add: ['toponly'],
      merge: ['shared', 'toponly'],
    });
  });

  it('refuses when the VG lacks the free space, naming the VG', () => {
    expect(() => planMerge({ top: fileTop, base: lvVolume(128 * MiB, 0), topInfo, baseInfo, measure, leafRoom: 0 }))
      .to.throw(VolmergeError, /volume group storage has only 0 bytes free/)
      .with.property('code', 'no-space');
  });

  it('refuses a fixed block device that is too small and says how many bytes it needs', () => {
    const block: Volume = { kind: 'block', path: '/dev/loop9', realPath: '/dev/loop9', driver: 'host_device', sizeBytes: 128 * MiB, identity: 'b' };
    expect(() => planMerge({ top: fileTop, base: block, topInfo, baseInfo, measure, leafRoom: 0 }))
      .to.throw(VolmergeError, new RegExp(`needs ${needed} bytes`))
      .with.property('code', 'too-small');
  });

  it('does not extend an LV that is big enough already', () => {
    expect(planMerge({ top: fileTop, base: lvVolume(256 * MiB, 0), topInfo, baseInfo, measure, leafRoom: 0 }).extendTo).to.equal(null);
  });

  it('never extends a file', () => {
    const file: Volume = { kind: 'file', path: 'b', realPath: '/b', driver: 'file', sizeBytes: 1000, identity: 'f:2', fsFreeBytes: 10 ** 12 };
    expect(planMerge({ top: fileTop, base: file, topInfo, baseInfo, measure, leafRoom: 0 }).extendTo).to.equal(null);
  });
});
