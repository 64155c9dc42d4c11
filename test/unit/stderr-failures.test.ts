import { expect } from 'chai';
import { findBitmapWriteFailure, findNoSpace } from '../../src/qemu/stderr-failures.js';
import { failOnSilentBitmapLoss } from '../../src/qemu/mutations.js';

const ENOSPC =
  "qemu-img: Lost persistent bitmaps during inactivation of node '#block123': Failed to write bitmap 'good' to file: No space left on device\n";
const JOB_ENOSPC = 'qemu-img: Block job failed: No space left on device\n';

describe('silent bitmap failures', () => {
  it('finds the line qemu-img 7.x prints while exiting 0', () => {
    expect(findBitmapWriteFailure(`${ENOSPC}`)).to.match(/Lost persistent bitmaps/);
    expect(findBitmapWriteFailure('')).to.equal(undefined);
  });
  it('tells a full device from a lost bitmap: a commit that ran out of space without bitmaps is not a bitmap failure', () => {
    expect(findBitmapWriteFailure(JOB_ENOSPC)).to.equal(undefined);
    expect(findNoSpace(JOB_ENOSPC)).to.match(/Block job failed/);
  });
  it('turns exit 0 with that stderr into bitmap-write-failed naming the volume', () => {
    const result = { argv: ['qemu-img'], exitCode: 0, stdout: '', stderr: ENOSPC };
    expect(() => failOnSilentBitmapLoss(result, '/dev/vg/base', 'bitmap --merge good'))
      .to.throw(/\/dev\/vg\/base: qemu-img bitmap --merge good could not write bitmaps \(exit 0\)/)
      .with.property('code', 'bitmap-write-failed');
  });
  it('calls a lost bitmap bitmap-write-failed even when the job then failed for lack of space, and space alone no-space', () => {
    const both = { argv: ['qemu-img'], exitCode: 1, stdout: '', stderr: `${ENOSPC}${JOB_ENOSPC}` };
    expect(() => failOnSilentBitmapLoss(both, '/dev/vg/base', 'commit')).to.throw().with.property('code', 'bitmap-write-failed');
    const full = { argv: ['qemu-img'], exitCode: 1, stdout: '', stderr: JOB_ENOSPC };
    expect(() => failOnSilentBitmapLoss(full, '/dev/vg/base', 'commit'))
      .to.throw(/\/dev\/vg\/base: qemu-img commit ran out of space \(exit 1\): Block job failed/)
      .with.property('code', 'no-space');
  });
});
