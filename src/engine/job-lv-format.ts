// The layout of a job LV on a shared VG (no file system: any host reads it after activating it): two journal slots
// written in turn, so that a write cut short leaves the other one whole, then an area holding the bitmap backup files.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { readFully } from '../os/read-range.js';

/** Each journal slot: a 512-byte header line, then the journal's JSON. */
export const SLOT_SIZE = 1024 * 1024;
const HEADER_SIZE = 512;
/** Where the backup area starts: its index first, then the files. */
export const BACKUP_OFFSET = 2 * SLOT_SIZE;
const INDEX_SIZE = 64 * 1024;
const FILE_ALIGN = 4096;
/** The smallest size of a job LV (two slots and an empty backup area). */
export const MIN_JOB_LV_BYTES = BACKUP_OFFSET + INDEX_SIZE;
const SLOT_MAGIC = 'volmerge-job-slot';
const INDEX_MAGIC = 'volmerge-job-backup';

/** A journal text read back from a slot, and the sequence number it was written with. */
export interface SlotRead {
  text: string;
  seq: number;
}

/** One file of the backup area. */
export interface BackupEntry {
  name: string;
  offset: number;
  length: number;
  sha256: string;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function align(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}

/** A header: one JSON line padded with spaces to its fixed size. */
function header(fields: Record<string, unknown>, size: number): Buffer {
  const line = `${JSON.stringify(fields)}\n`;
  if (line.length > size) throw new Error('job LV header too long');
  return Buffer.concat([Buffer.from(line, 'utf8'), Buffer.alloc(size - line.length, ' ')]);
}

function parseHeader(buffer: Buffer): Record<string, unknown> | undefined {
  const end = buffer.indexOf(0x0a);
  if (end <= 0) return undefined;
  try {
    const data = JSON.parse(buffer.subarray(0, end).toString('utf8')) as unknown;
    return data && typeof data === 'object' ? (data as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function writeAt(handle: FileHandle, offset: number, data: Buffer): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, offset + done);
    done += bytesWritten;
  }
}

/** Zeroes both slots and the backup index of a new job LV (its extents may hold an older job's data), then flushes. */
export async function clearJobLv(handle: FileHandle): Promise<void> {
  await writeAt(handle, 0, Buffer.alloc(MIN_JOB_LV_BYTES));
  await handle.sync();
}

async function readSlot(handle: FileHandle, index: number): Promise<SlotRead | undefined> {
  const head = parseHeader(await readFully(handle, index * SLOT_SIZE, HEADER_SIZE));
  if (!head || head.magic !== SLOT_MAGIC || head.version !== 1) return undefined;
  const { seq, length, sha256: sum } = head;
  if (typeof seq !== 'number' || typeof length !== 'number' || typeof sum !== 'string' || length > SLOT_SIZE - HEADER_SIZE) return undefined;
  const body = await readFully(handle, index * SLOT_SIZE + HEADER_SIZE, length);
  if (body.length !== length || sha256(body) !== sum) return undefined;
  return { text: body.toString('utf8'), seq };
}

/** The newest whole journal of the LV (highest sequence number of a slot whose checksum holds), or undefined when none was written. */
export async function readNewestSlot(handle: FileHandle): Promise<SlotRead | undefined> {
  const slots = [await readSlot(handle, 0), await readSlot(handle, 1)].filter((s): s is SlotRead => s !== undefined);
  return slots.sort((a, b) => b.seq - a.seq)[0];
}

/** Writes a journal with sequence number seq into slot seq % 2 (never the newest one) and flushes it to the disk. */
export async function writeSlot(handle: FileHandle, seq: number, text: string): Promise<void> {
  const body = Buffer.from(text, 'utf8');
  if (body.length > SLOT_SIZE - HEADER_SIZE) throw new Error(`journal of ${body.length} bytes does not fit a job LV slot`);
  const head = header({ magic: SLOT_MAGIC, version: 1, seq, length: body.length, sha256: sha256(body) }, HEADER_SIZE);
  await writeAt(handle, (seq % 2) * SLOT_SIZE, Buffer.concat([head, body]));
  await handle.sync();
}

/** How many bytes the LV needs to hold backup files of these sizes. */
export function bytesForBackup(sizes: readonly number[]): number {
  return BACKUP_OFFSET + INDEX_SIZE + sizes.reduce((sum, size) => sum + align(size, FILE_ALIGN), 0);
}

/** Writes the backup files after the index, flushes, then writes the index naming them (a crash before it leaves no backup). */
export async function writeBackupArea(handle: FileHandle, files: readonly { name: string; data: Buffer }[]): Promise<BackupEntry[]> {
  await writeAt(handle, BACKUP_OFFSET, Buffer.alloc(HEADER_SIZE));
  await handle.sync();
  const entries: BackupEntry[] = [];
  let offset = BACKUP_OFFSET + INDEX_SIZE;
  for (const file of files) {
    await writeAt(handle, offset, file.data);
    entries.push({ name: file.name, offset, length: file.data.length, sha256: sha256(file.data) });
    offset += align(file.data.length, FILE_ALIGN);
  }
  await handle.sync();
  await writeAt(handle, BACKUP_OFFSET, header({ magic: INDEX_MAGIC, version: 1, files: entries }, INDEX_SIZE));
  await handle.sync();
  return entries;
}

/** Reads the backup files back, each checked against its checksum; an empty list when no backup was written. */
export async function readBackupArea(handle: FileHandle): Promise<{ name: string; data: Buffer }[]> {
  const head = parseHeader(await readFully(handle, BACKUP_OFFSET, INDEX_SIZE));
  if (!head || head.magic !== INDEX_MAGIC || head.version !== 1 || !Array.isArray(head.files)) return [];
  const files: { name: string; data: Buffer }[] = [];
  for (const entry of head.files as BackupEntry[]) {
    const data = await readFully(handle, entry.offset, entry.length);
    if (data.length !== entry.length || sha256(data) !== entry.sha256) {
      throw new Error(`backup file ${entry.name} at offset ${entry.offset} does not match its checksum`);
    }
    files.push({ name: entry.name, data });
  }
  return files;
}
