import { expect } from 'chai';
import { lvExtendTarget, neededBytes, roundUp } from '../../src/merge/sizes.js';

describe('sizes', () => {
  const MiB = 1024 * 1024;
  it('rounds up to the extent size and leaves exact multiples alone', () => {
    expect(roundUp(1, 4 * MiB)).to.equal(4 * MiB);
    expect(roundUp(8 * MiB, 4 * MiB)).to.equal(8 * MiB);
    expect(roundUp(8 * MiB + 1, 4 * MiB)).to.equal(12 * MiB);
  });
  it('needs required plus bitmaps, and required alone when measure has no bitmaps', () => {
    expect(neededBytes({ required: 132513792, 'fully-allocated': 0, bitmaps: 196608 })).to.equal(132710400);
    expect(neededBytes({ required: 10, 'fully-allocated': 0 })).to.equal(10);
  });
  it('extends only when the rounded target exceeds the LV, adding leaf room', () => {
    expect(lvExtendTarget(128 * MiB + 1, 0, 4 * MiB, 128 * MiB)).to.equal(128 * MiB + 4 * MiB);
    expect(lvExtendTarget(132710400, 0, 4 * MiB, 128 * MiB)).to.equal(null);
    expect(lvExtendTarget(100 * MiB, 0, 4 * MiB, 128 * MiB)).to.equal(null);
    expect(lvExtendTarget(126 * MiB, 8 * MiB, 4 * MiB, 128 * MiB)).to.equal(136 * MiB);
    expect(lvExtendTarget(126 * MiB, 0, 4 * MiB, 128 * MiB)).to.equal(null);
  });
});
