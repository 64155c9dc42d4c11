import { expect } from 'chai';
import { findBitmapWriteFailure } from '../../src/qemu/stderr-failures.js';
import { failOnSilentBitmapLoss } from '../../src/qemu/mutations.js';

const ENOSPC =
  "qemu-img: Lost persistent bitmaps during inactivation of node '#block123': Failed to write bitmap 'good' to file: No space left on device\n";

describe('silent bitmap failures', () => {
  it('finds the line qemu-img 7.x prints while exiting 0', () => {
    expect(findBitmapWriteFailure(`${ENOSPC}`)).to.match(/Lost persistent bitmaps/);
    expect(findBitmapWriteFailure('qemu-img: Block job failed: No space left on device')).to.match(/No space/);
    expect(findBitmapWriteFailure('')).to.equal(undefined);
  });
  it('turns exit 0 with that stderr into bitmap-write-failed naming the volume', () => {
    const result = { argv: ['qemu-img'], exitCode: 0, stdout: '', stderr: ENOSPC };
    expect(() => failOnSilentBitmapLoss(result, '/dev/vg/base', 'bitmap --merge good'))
      .to.throw(/\/dev\/vg\/base: qemu-img bitmap --merge good could not write bitmaps \(exit 0\)/)
      .with.property('code', 'bitmap-write-failed');
  });
});
