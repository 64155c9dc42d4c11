// readDiskBitmaps against qemu-img info on real images: the same bitmaps, flags and granularities in the same order
// (enabled, disabled, in-use, many, on a block device), none when qemu ignores the extension, a refusal where qemu refuses.
import { expect } from 'chai';
import { open } from 'node:fs/promises';
import { VolmergeError } from '../../src/errors.js';
import { parseQcow2Header } from '../../src/qemu/qcow2-header.js';
import { readDiskBitmaps } from '../../src/qemu/qcow2-bitmaps.js';
import { addBitmap, bitmapsIn, breakBitmaps, writeData } from '../helpers/images.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { sh } from '../helpers/commands.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { execa } from 'execa';

const MiB = 1024 * 1024;

/** Adds count enabled bitmaps stale0... in one qemu-storage-daemon session (one qemu-img run each would take minutes). */
async function addMany(image: string, count: number): Promise<void> {
  const lines = ['{"execute":"qmp_capabilities"}', JSON.stringify({ execute: 'blockdev-add', arguments: { driver: 'qcow2', 'node-name': 'b', file: { driver: 'file', filename: image } } })];
  for (let i = 0; i < count; i += 1) lines.push(JSON.stringify({ execute: 'block-dirty-bitmap-add', arguments: { node: 'b', name: `stale${i}`, persistent: true } }));
  lines.push('{"execute":"quit"}');
  const result = await execa('qemu-storage-daemon', ['--chardev', 'stdio,id=qmp', '--monitor', 'chardev=qmp'], { input: `${lines.join('\n')}\n`, reject: false });
  expect(result.stdout).to.not.include('"error"');
}

/** Clears autoclear bit 0 (bitmaps) of a version 3 header, as a program that knows nothing of bitmaps does when it writes. */
async function flipAutoclear(image: string): Promise<void> {
  const handle = await open(image, 'r+');
  try {
    const header = Buffer.alloc(104);
    await handle.read(header, 0, 104, 0);
    header.writeBigUInt64BE(header.readBigUInt64BE(88) & ~1n, 88);
    await handle.write(header, 88, 8, 88);
  } finally {
    await handle.close();
  }
}

describe('readDiskBitmaps (the bitmap directory read without qemu-img)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-disk-bitmaps-');

  it('reads none from an image without bitmaps', async () => {
    const image = ws.path('plain.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '64M']);
    expect(await readDiskBitmaps(image, 'base')).to.deep.equal([]);
  });

  it('reads what qemu-img info reads: names, granularities, enabled and disabled, in directory order', async () => {
    const image = ws.path('mixed.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '256M']);
    await addBitmap(image, 'a');
    await addBitmap(image, 'off', { disabled: true });
    await addBitmap(image, 'coarse', { granularity: 1024 * 1024 });
    await addBitmap(image, 'ünïcode-name-with-odd-length');
    await writeData(image, 0, 8, 0x33);
    const disk = await readDiskBitmaps(image, 'base');
    expect(disk).to.deep.equal(await bitmapsIn(image));
    expect(disk.map((b) => b.name)).to.deep.equal(['a', 'off', 'coarse', 'ünïcode-name-with-odd-length']);
    expect(disk.find((b) => b.name === 'off')?.flags).to.deep.equal([]);
  });

  it('reads bitmaps left in-use by a killed writer as in-use, as qemu-img info does', async () => {
    const image = ws.path('broken.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '64M']);
    await addBitmap(image, 'a');
    await addBitmap(image, 'b', { disabled: true });
    await breakBitmaps(image);
    const disk = await readDiskBitmaps(image, 'base');
    expect(disk).to.deep.equal(await bitmapsIn(image));
    expect(disk.every((b) => b.flags.includes('in-use'))).to.equal(true);
  });

  it('reads 1000 bitmaps', async () => {
    const image = ws.path('many.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '64M']);
    await addMany(image, 1000);
    const disk = await readDiskBitmaps(image, 'base');
    expect(disk).to.have.length(1000);
    expect(disk).to.deep.equal(await bitmapsIn(image));
  });

  it('reads none when the autoclear bit is off, as qemu then ignores the extension', async () => {
    const image = ws.path('autoclear.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '64M']);
    await addBitmap(image, 'a');
    await flipAutoclear(image);
    expect(await bitmapsIn(image), 'qemu-img info ignores them').to.deep.equal([]);
    expect(await readDiskBitmaps(image, 'base')).to.deep.equal([]);
  });

  it('refuses a directory qemu would refuse (an entry of an unknown type), naming the volume', async () => {
    const image = ws.path('bad.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '64M']);
    await addBitmap(image, 'a');
    const handle = await open(image, 'r+');
    try {
      const first = Buffer.alloc(65536);
      await handle.read(first, 0, first.length, 0);
      const location = parseQcow2Header(first).bitmapDirectory;
      if (!location) throw new Error('no bitmaps extension');
      // Byte 16 of the first entry is its type (1: dirty tracking).
      await handle.write(Buffer.from([7]), 0, 1, location.offset + 16);
    } finally {
      await handle.close();
    }
    const qemu = await execa('qemu-img', ['info', '-f', 'qcow2', image], { reject: false });
    expect(qemu.exitCode, 'qemu-img info refuses it too').to.not.equal(0);
    const error = await readDiskBitmaps(image, 'base').then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).to.be.instanceOf(VolmergeError).with.property('code', 'verify-failed');
    expect((error as Error).message).to.include(image);
  });

  it('reads the bitmaps of a qcow2 on a block device', async function () {
    if (!(await canUseLoopDevices())) this.skip();
    const device = await ws.blockDevice('base', 64 * MiB);
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', device, '256M']);
    await addBitmap(device, 'a');
    await addBitmap(device, 'b', { disabled: true });
    expect(await readDiskBitmaps(device, 'base')).to.deep.equal(await bitmapsIn(device));
  });
});
