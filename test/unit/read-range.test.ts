// readFully and readRange: a range read in full, cut short only where the file ends; a device or file read in pieces.
import { expect } from 'chai';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFully, readRange } from '../../src/os/read-range.js';

describe('readRange and readFully', () => {
  let dir: string;
  let file: string;
  const bytes = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
  before(async () => {
    dir = await mkdtemp(join(process.env.VOLMERGE_TEST_TMP || tmpdir(), 'volmerge-read-range-'));
    file = join(dir, 'data');
    await writeFile(file, bytes);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('reads the bytes at an offset, and fewer where the file ends first', async () => {
    expect(await readRange(file, 100, 5000)).to.deep.equal(bytes.subarray(100, 5100));
    expect(await readRange(file, 9000, 4096)).to.deep.equal(bytes.subarray(9000));
    expect((await readRange(file, 20_000, 10)).length).to.equal(0);
  });

  it('goes on reading when one read returns less than asked for', async () => {
    const handle = await open(file, 'r');
    const read = handle.read.bind(handle);
    let calls = 0;
    // Each read returns at most 1000 bytes, as a pipe or some devices do.
    (handle as unknown as { read: unknown }).read = (buffer: Buffer, offset: number, length: number, position: number) => {
      calls += 1;
      return read(buffer, offset, Math.min(length, 1000), position);
    };
    try {
      expect(await readFully(handle, 10, 4500)).to.deep.equal(bytes.subarray(10, 4510));
      expect(calls).to.equal(5);
    } finally {
      await handle.close();
    }
  });
});
