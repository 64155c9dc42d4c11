// Test helper: chains as real platforms hold them (base's cluster size, extended L2, refcount width, compression; a raw
// or qcow2 base; a top grown after the snapshot), with dense or scattered data written by one qemu-io process per image.
import { execa } from 'execa';
import { stat } from 'node:fs/promises';
import { sh } from './commands.js';
import { addBitmap } from './images.js';

const MiB = 1024 * 1024;

/** The qcow2 creation options of base that change how much room the same data takes. */
export interface BaseLayout {
  clusterSize?: number;
  extendedL2?: boolean;
  refcountBits?: 1 | 2 | 4 | 8 | 16 | 32 | 64;
  compressionType?: 'zlib' | 'zstd';
}

/** A byte range [offset, offset + length). */
export interface Range {
  offset: number;
  length: number;
}

/** `-o ...` arguments of qemu-img create for a layout; none for qemu's defaults. */
export function layoutOptions(layout: BaseLayout = {}): string[] {
  const options: string[] = [];
  if (layout.clusterSize !== undefined) options.push(`cluster_size=${layout.clusterSize}`);
  if (layout.extendedL2) options.push('extended_l2=on');
  if (layout.refcountBits !== undefined) options.push(`refcount_bits=${layout.refcountBits}`);
  if (layout.compressionType !== undefined) options.push(`compression_type=${layout.compressionType}`);
  return options.length > 0 ? ['-o', options.join(',')] : [];
}

/** length bytes from offset, in pieces of at most 8 MiB (one qemu-io command each). */
export function denseRanges(offset: number, length: number): Range[] {
  const ranges: Range[] = [];
  for (let done = 0; done < length; done += 8 * MiB) ranges.push({ offset: offset + done, length: Math.min(8 * MiB, length - done) });
  return ranges;
}

/** count writes of size bytes spread evenly over [0, span), each `phase` bytes into its stride (stride a multiple of size). */
export function scatteredRanges(span: number, count: number, size: number, phase = 0): Range[] {
  const stride = Math.floor(span / count / size) * size;
  if (stride < size || phase + size > stride) throw new Error(`${count} writes of ${size} bytes at phase ${phase} do not fit apart in ${span} bytes`);
  return Array.from({ length: count }, (_, i) => ({ offset: i * stride + phase, length: size }));
}

/** Writes a byte pattern over the ranges with one qemu-io process (image opened as `format`, backing followed). */
export async function writeRanges(image: string, format: 'qcow2' | 'raw', ranges: readonly Range[], pattern: number): Promise<void> {
  if (ranges.length === 0) return;
  const commands = ranges.flatMap((r) => ['-c', `write -q -P ${pattern} ${r.offset} ${r.length}`]);
  await sh(['qemu-io', '-f', format, ...commands, image]);
}

/** What to build: base (raw, or qcow2 in a layout, with data and bitmaps), then top (qcow2, maybe grown) over it. */
export interface LayoutChainSpec {
  /** Base's virtual size in bytes (ignored for a raw base on a block device: the device's size is its virtual size). */
  virtualSize: number;
  baseFormat?: 'qcow2' | 'raw';
  layout?: BaseLayout;
  /** Written into base before top exists (pattern 0x11). */
  baseData?: Range[];
  /** Bitmaps stale0..staleN-1 in base only (qcow2 base). */
  stale?: number;
  /** Bitmaps in base (qcow2 base) and in top. */
  shared?: string[];
  /** Bitmaps in top only. */
  topOnly?: string[];
  /** Top's virtual size after `qemu-img resize` (made after its bitmaps, before its data). */
  growTo?: number;
  /** Written into top (pattern 0x5a). */
  topData?: Range[];
}

async function isBlockDevice(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isBlockDevice(),
    () => false,
  );
}

/** Builds base and top (each a file path, or a block device that exists); top records base's format with -F. */
export async function buildLayoutChain(base: string, top: string, spec: LayoutChainSpec): Promise<void> {
  const format = spec.baseFormat ?? 'qcow2';
  if (format === 'qcow2') {
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', ...layoutOptions(spec.layout), base, String(spec.virtualSize)]);
  } else if (!(await isBlockDevice(base))) {
    await sh(['qemu-img', 'create', '-q', '-f', 'raw', base, String(spec.virtualSize)]);
  }
  await writeRanges(base, format, spec.baseData ?? [], 0x11);
  if (format === 'qcow2') {
    for (let i = 0; i < (spec.stale ?? 0); i += 1) await addBitmap(base, `stale${i}`);
    for (const name of spec.shared ?? []) await addBitmap(base, name);
  }
  await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', format, top]);
  for (const name of [...(spec.shared ?? []), ...(spec.topOnly ?? [])]) await addBitmap(top, name);
  if (spec.growTo !== undefined) await sh(['qemu-img', 'resize', '-q', '-f', 'qcow2', top, String(spec.growTo)]);
  await writeRanges(top, 'qcow2', spec.topData ?? [], 0x5a);
}

/** Whether `image` (opened as `format`, alone: no backing followed for raw) reads exactly as the raw file `raw`. */
export async function readsAs(image: string, format: 'qcow2' | 'raw', raw: string): Promise<boolean> {
  const result = await execa('qemu-img', ['compare', '-f', format, '-F', 'raw', image, raw], { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0 && result.exitCode !== 1) throw new Error(`qemu-img compare ${image} ${raw} failed: ${String(result.stderr)}`);
  return result.exitCode === 0;
}
