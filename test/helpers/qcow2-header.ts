// Test helper: edits a qcow2 (v3) header in place to make what qemu-img refuses to make, e.g. a top that names its
// backing file but records no backing format (as images made by older qemu do).
import { open } from 'node:fs/promises';

const QCOW2_MAGIC = 0x514649fb;
const BACKING_FORMAT_EXTENSION = 0xe2792aca;

function pad8(length: number): number {
  return Math.ceil(length / 8) * 8;
}

/** Removes the backing-format header extension of a qcow2 v3 image; its backing file name stays, moved up behind the extensions. */
export async function removeBackingFormat(image: string): Promise<void> {
  const file = await open(image, 'r+');
  try {
    const probe = Buffer.alloc(104);
    await file.read(probe, 0, probe.length, 0);
    if (probe.readUInt32BE(0) !== QCOW2_MAGIC || probe.readUInt32BE(4) !== 3) throw new Error(`${image} is not a qcow2 v3 image`);
    const clusterSize = 2 ** probe.readUInt32BE(20);
    const head = Buffer.alloc(clusterSize);
    await file.read(head, 0, clusterSize, 0);
    const backingOffset = Number(head.readBigUInt64BE(8));
    const backingLength = head.readUInt32BE(16);
    if (backingOffset === 0 || backingLength === 0) throw new Error(`${image} names no backing file`);
    const backingName = Buffer.from(head.subarray(backingOffset, backingOffset + backingLength));
    const headerLength = head.readUInt32BE(100);

    const kept: Buffer[] = [];
    let found = false;
    let position = headerLength;
    for (;;) {
      const type = head.readUInt32BE(position);
      const length = head.readUInt32BE(position + 4);
      if (type === 0) break;
      const extension = head.subarray(position, position + 8 + pad8(length));
      if (type === BACKING_FORMAT_EXTENSION) found = true;
      else kept.push(Buffer.from(extension));
      position += 8 + pad8(length);
    }
    if (!found) throw new Error(`${image} records no backing format`);
    const oldEnd = Math.max(position + 8, backingOffset + backingLength);

    const extensions = Buffer.concat([...kept, Buffer.alloc(8)]);
    const area = Buffer.alloc(oldEnd - headerLength);
    extensions.copy(area, 0);
    backingName.copy(area, extensions.length);
    const header = Buffer.from(head.subarray(0, headerLength));
    header.writeBigUInt64BE(BigInt(headerLength + extensions.length), 8);
    await file.write(Buffer.concat([header, area]), 0, headerLength + area.length, 0);
    await file.sync();
  } finally {
    await file.close();
  }
}
