// Whether another process keeps a file from being written, read from /proc/locks. qemu takes one byte-range lock per
// permission it holds (byte 100 + the permission's bit) and one per permission it refuses to share (byte 200 + bit);
// WRITE is bit 1, so a lock on byte 201 means a VM or a qemu-img has the image open and lets nobody else write it.
import { readFile, stat } from 'node:fs/promises';

/** The byte qemu locks when it does not share the write permission. */
const UNSHARED_WRITE_BYTE = 201;

/** A device number as /proc/locks prints it: major and minor in hex, two digits at least. */
function deviceLabel(dev: number): string {
  const big = BigInt(dev);
  const major = ((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn);
  const minor = (big & 0xffn) | ((big >> 12n) & ~0xffn);
  const hex = (n: bigint): string => n.toString(16).padStart(2, '0');
  return `${hex(major)}:${hex(minor)}`;
}

/** Whether one /proc/locks line locks this file over the byte. */
function locksByte(line: string, file: string, byte: number): boolean {
  // "1: OFDLCK ADVISORY  READ -1 fe:00:2146842 201 201" (a blocked waiter's line starts "1: ->" and is skipped)
  const fields = line.trim().split(/\s+/);
  if (fields[1] === '->' || fields[5] !== file) return false;
  const start = Number(fields[6]);
  const end = fields[7] === 'EOF' ? Infinity : Number(fields[7]);
  return start <= byte && byte <= end;
}

/** True when some process holds a lock that keeps others from writing path (qemu's unshared write); false when none, or when /proc/locks or path cannot be read (the caller's own checks name a missing path). */
export async function writeLockedByOther(path: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile('/proc/locks', 'utf8');
  } catch {
    return false;
  }
  let file: string;
  try {
    const { dev, ino } = await stat(path);
    file = `${deviceLabel(dev)}:${ino}`;
  } catch {
    return false;
  }
  return text.split('\n').some((line) => locksByte(line, file, UNSHARED_WRITE_BYTE));
}
