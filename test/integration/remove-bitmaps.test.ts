// removeBitmaps: many bitmaps removed by one qemu-storage-daemon (or qemu-img per bitmap when it is missing), checked alike.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { VolmergeError } from '../../src/errors.js';
import { startStorageDaemon } from '../../src/qemu/qmp.js';
import { removeBitmaps } from '../../src/qemu/remove-bitmaps.js';
import { addBitmap, bitmapsIn } from '../helpers/images.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { sh } from '../helpers/commands.js';
import { Workspace } from '../helpers/workspace.js';
import { execa } from 'execa';
import { sleep, untilHeldOpen } from '../helpers/wait.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { fakeTool } from '../helpers/fake-tools.js';

const MiB = 1024 * 1024;
const STALE = Array.from({ length: 32 }, (_, i) => `stale${i}`);

/** Runs body with VOLMERGE_QEMU_STORAGE_DAEMON set (or unset), restoring it afterwards. */
async function withDaemon<T>(binary: string | undefined, body: () => Promise<T>): Promise<T> {
  const saved = process.env.VOLMERGE_QEMU_STORAGE_DAEMON;
  if (binary === undefined) delete process.env.VOLMERGE_QEMU_STORAGE_DAEMON;
  else process.env.VOLMERGE_QEMU_STORAGE_DAEMON = binary;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.VOLMERGE_QEMU_STORAGE_DAEMON;
    else process.env.VOLMERGE_QEMU_STORAGE_DAEMON = saved;
  }
}

async function thrownBy(body: () => Promise<unknown>): Promise<unknown> {
  try {
    await body();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('removeBitmaps', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh));

  /** A qcow2 image with the 32 stale bitmaps and one bitmap 'keep' holding data. */
  async function imageWithBitmaps(path: string, stale = STALE): Promise<string> {
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', path, '256M']);
    for (const name of stale) await addBitmap(path, name);
    await addBitmap(path, 'keep');
    await sh(['qemu-io', '-f', 'qcow2', '-c', 'write -P 7 0 4M', path]);
    return path;
  }

  async function expectOnlyKeep(image: string): Promise<void> {
    const left = await bitmapsIn(image);
    expect(left.map((b) => b.name)).to.deep.equal(['keep']);
    expect(left[0]?.flags).to.deep.equal(['auto']);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', image]);
  }

  it('removes 32 stale bitmaps of a file with qemu-storage-daemon and keeps the others whole; a missing name counts as removed', async () => {
    const image = await imageWithBitmaps(ws.path('base.qcow2'));
    await withDaemon(undefined, () => removeBitmaps(image, 'file', [...STALE, 'already-gone']));
    await expectOnlyKeep(image);
  });

  it('does the same with qemu-img, one bitmap per run, when qemu-storage-daemon is not installed', async () => {
    const image = await imageWithBitmaps(ws.path('base.qcow2'));
    await withDaemon(ws.path('no-such-daemon'), () => removeBitmaps(image, 'file', [...STALE, 'already-gone']));
    await expectOnlyKeep(image);
  });

  it('removes bitmaps of a qcow2 on a block device (host_device)', async function () {
    if (!(await canUseLoopDevices())) this.skip();
    const device = await imageWithBitmaps(await ws.blockDevice('base', 128 * MiB), STALE.slice(0, 8));
    await withDaemon(undefined, () => removeBitmaps(device, 'host_device', STALE.slice(0, 8)));
    await expectOnlyKeep(device);
  });

  it('refuses an image another process holds, naming it, and removes nothing', async () => {
    const image = await imageWithBitmaps(ws.path('base.qcow2'), STALE.slice(0, 4));
    const holder = spawn('qemu-io', ['-f', 'qcow2', '-c', 'sleep 5000', image], { stdio: 'ignore' });
    try {
      await untilHeldOpen(image, () => holder.exitCode !== null);
      const error = await thrownBy(() => withDaemon(undefined, () => removeBitmaps(image, 'file', STALE.slice(0, 4))));
      expect(error).to.be.instanceOf(VolmergeError);
      expect(error).to.have.property('code', 'busy');
      expect((error as Error).message).to.include(image);
    } finally {
      holder.kill();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    expect((await bitmapsIn(image)).map((b) => b.name)).to.have.members([...STALE.slice(0, 4), 'keep']);
  });

  it('uses a daemon started ahead, which opens the image only when asked and closes it again', async () => {
    const image = await imageWithBitmaps(ws.path('base.qcow2'));
    const daemon = await startStorageDaemon();
    if (!daemon) throw new Error('qemu-storage-daemon is not installed');
    try {
      // Started and waiting, it holds no lock on the image: qemu-img can still write it.
      await sh(['qemu-img', 'bitmap', '--add', image, 'added-meanwhile']);
      await withDaemon(undefined, () => removeBitmaps(image, 'file', [...STALE, 'added-meanwhile'], undefined, daemon));
      // Still running, and holding nothing: the image is closed, its bitmaps written back.
      await expectOnlyKeep(image);
    } finally {
      expect((await daemon.quit()).exitCode).to.equal(0);
    }
  });

  it('stops a daemon started ahead that is not used, leaving no process behind', async () => {
    const daemons = async (): Promise<number> => Number((await execa('pgrep', ['-c', '-x', 'qemu-storage-da'], { reject: false })).stdout.trim() || '0');
    const before = await daemons();
    const daemon = await startStorageDaemon();
    expect(daemon).to.not.equal(undefined);
    expect(await daemons()).to.equal(before + 1);
    await daemon?.quit();
    for (let waited = 0; (await daemons()) !== before && waited < 5000; waited += 50) await sleep(50);
    expect(await daemons(), 'the daemon quit').to.equal(before);
  });

  it('refuses a busy image with a daemon started ahead too, naming it, and removes nothing', async () => {
    const image = await imageWithBitmaps(ws.path('base.qcow2'), STALE.slice(0, 4));
    const daemon = await startStorageDaemon();
    if (!daemon) throw new Error('qemu-storage-daemon is not installed');
    const holder = spawn('qemu-io', ['-f', 'qcow2', '-c', 'sleep 5000', image], { stdio: 'ignore' });
    try {
      await untilHeldOpen(image, () => holder.exitCode !== null);
      const error = await thrownBy(() => withDaemon(undefined, () => removeBitmaps(image, 'file', STALE.slice(0, 4), undefined, daemon)));
      expect(error).to.be.instanceOf(VolmergeError);
      expect(error).to.have.property('code', 'busy');
      expect((error as Error).message).to.include(image);
    } finally {
      holder.kill();
      await new Promise((resolve) => holder.once('exit', resolve));
      await daemon.quit();
    }
    expect((await bitmapsIn(image)).map((b) => b.name)).to.have.members([...STALE.slice(0, 4), 'keep']);
  });

  it('fails with bitmap-write-failed when the daemon reports lost bitmaps on stderr, though it exits 0', async () => {
    const image = await imageWithBitmaps(ws.path('base.qcow2'), STALE.slice(0, 4));
    const liar = await fakeTool(ws.path('bin'), 'qemu-storage-daemon', 'lying-storage-daemon');
    const error = await thrownBy(() => withDaemon(liar, () => removeBitmaps(image, 'file', STALE.slice(0, 4))));
    expect(error).to.be.instanceOf(VolmergeError);
    expect(error).to.have.property('code', 'bitmap-write-failed');
  });
});
