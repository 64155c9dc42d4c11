// qemu-img 7.x exits 0 after losing bitmaps for lack of space: the mutations must still report failure.
import { expect } from 'chai';
import { bitmapsIn, makeChain } from '../helpers/images.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { commit, copyBitmap } from '../../src/qemu/mutations.js';
import { VolmergeError } from '../../src/errors.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const MiB = 1024 * 1024;

describe('silent ENOSPC on a 128 MiB block device (the vdsm case, without volmerge pruning)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  before(async function () {
    if (!(await canUseLoopDevices())) this.skip();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh));

  async function staleChain(stale: number): Promise<{ base: string; top: string }> {
    const base = await ws.blockDevice('base', 128 * MiB);
    const top = await ws.blockDevice('top', 128 * MiB);
    await makeChain(base, top, { stale, topOnly: ['good'], topDataMiB: 126 });
    return { base, top };
  }

  it('a bitmap --merge that prints "Failed to write bitmap" and exits 0 is a failure', async () => {
    const { base, top } = await staleChain(6);
    await commit(top, base);
    let thrown: unknown;
    try {
      await copyBitmap(base, top, { name: 'good', addWithGranularity: 65536 });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(VolmergeError);
    expect((thrown as VolmergeError).code).to.equal('bitmap-write-failed');
    expect((thrown as VolmergeError).details.exitCode, 'qemu-img itself said 0').to.equal(0);
    expect((thrown as VolmergeError).message).to.match(/No space left on device/);
    expect((await bitmapsIn(base)).some((b) => b.flags.includes('in-use')), 'bitmaps really are lost').to.equal(true);
  });

  it('a commit that loses a stale bitmap with exit 0 is a failure', async () => {
    const { base, top } = await staleChain(11);
    let thrown: unknown;
    try {
      await commit(top, base);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(VolmergeError);
    expect((thrown as VolmergeError).code).to.equal('bitmap-write-failed');
    expect((thrown as VolmergeError).details.exitCode).to.equal(0);
  });
});
