// Reads a byte range of a file or device in full: one read may return fewer bytes than asked for, so reading goes on
// until the range is whole or the end of the file is reached.
import { open, type FileHandle } from 'node:fs/promises';

/** Reads length bytes at offset from an open file; fewer only where the file ends first. */
export async function readFully(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/** Opens path read-only, reads length bytes at offset (fewer where the file ends first) and closes it. */
export async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    return await readFully(handle, offset, length);
  } finally {
    await handle.close();
  }
}
