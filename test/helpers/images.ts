// Test helper: builds real qcow2 chains with qemu-img and qemu-io, with stale, shared, top-only and broken bitmaps.
import { expect } from 'chai';
import { execa } from 'execa';
import { sh } from './commands.js';

/** The bitmaps and data of a chain to build. */
export interface ChainSpec {
  /** Virtual size, e.g. '1G'. */
  virtualSize?: string;
  /** Number of stale bitmaps in base (stale0..staleN-1). */
  stale?: number;
  /** Bitmaps in both (shared names). */
  shared?: string[];
  /** Bitmaps only in top. */
  topOnly?: string[];
  /** A disabled bitmap in top. */
  topDisabled?: string[];
  /** MiB of data written to base before top is made (pattern 0x11). */
  baseDataMiB?: number;
  /** MiB of data written to top (pattern 0x5a), starting at topDataOffsetMiB. */
  topDataMiB?: number;
  topDataOffsetMiB?: number;
}

/** Writes MiB of a byte pattern at an offset (MiB) with qemu-io, in 8 MiB pieces so bitmaps see every cluster. */
export async function writeData(image: string, offsetMiB: number, sizeMiB: number, pattern: number): Promise<void> {
  if (sizeMiB <= 0) return;
  const commands: string[] = [];
  for (let done = 0; done < sizeMiB; done += 8) {
    const piece = Math.min(8, sizeMiB - done);
    commands.push('-c', `write -P ${pattern} ${offsetMiB + done}M ${piece}M`);
  }
  await sh(['qemu-io', '-f', 'qcow2', ...commands, image]);
}

/** Adds a bitmap to an image (enabled unless disabled is true). */
export async function addBitmap(image: string, name: string, options: { disabled?: boolean; granularity?: number } = {}): Promise<void> {
  const args = ['qemu-img', 'bitmap', '-f', 'qcow2', '--add'];
  if (options.granularity) args.push('-g', String(options.granularity));
  if (options.disabled) args.push('--disable');
  await sh([...args, image, name]);
}

/** Leaves every bitmap of an image in-use, the way a crash of a writer does. */
export async function breakBitmaps(image: string): Promise<void> {
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'abort', image], { reject: false, stdin: 'ignore' });
}

/** Builds base (qcow2, on a file or device path that exists or not) and top backed by it. */
export async function makeChain(base: string, top: string, spec: ChainSpec = {}): Promise<void> {
  const size = spec.virtualSize ?? '1G';
  await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', base, size]);
  await writeData(base, 0, spec.baseDataMiB ?? 0, 0x11);
  for (let i = 0; i < (spec.stale ?? 0); i += 1) await addBitmap(base, `stale${i}`);
  for (const name of spec.shared ?? []) await addBitmap(base, name);
  await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
  for (const name of spec.shared ?? []) await addBitmap(top, name);
  for (const name of spec.topOnly ?? []) await addBitmap(top, name, { granularity: 131072 });
  for (const name of spec.topDisabled ?? []) await addBitmap(top, name, { disabled: true });
  await writeData(top, spec.topDataOffsetMiB ?? 0, spec.topDataMiB ?? 0, 0x5a);
}

/** A raw copy of what an image shows (its whole chain), to compare against later. */
export async function rawCopy(image: string, raw: string): Promise<void> {
  await sh(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', image, raw]);
}

/** Whether an image reads exactly as a raw file (qemu-img compare, exit 0). */
export async function sameData(image: string, raw: string): Promise<boolean> {
  const result = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', image, raw], { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0 && result.exitCode !== 1) throw new Error(`qemu-img compare failed: ${String(result.stderr)}`);
  return result.exitCode === 0;
}

/** The bitmaps of an image as {name, flags}. */
export async function bitmapsIn(image: string): Promise<{ name: string; flags: string[]; granularity: number }[]> {
  const info = JSON.parse(await sh(['qemu-img', 'info', '--output', 'json', '-U', '-f', 'qcow2', image])) as {
    'format-specific'?: { data?: { bitmaps?: { name: string; flags: string[]; granularity: number }[] } };
  };
  return info['format-specific']?.data?.bitmaps ?? [];
}

/** What qemu-img check says of an image: its exit code, leaked clusters and corruptions. */
export async function checkOf(image: string): Promise<{ exitCode: number; leaks: number; corruptions: number; checkErrors: number }> {
  const run = await execa('qemu-img', ['check', '--output', 'json', '-f', 'qcow2', image], { reject: false, stdin: 'ignore' });
  const found = JSON.parse(String(run.stdout)) as { leaks?: number; corruptions?: number; 'check-errors'?: number };
  return { exitCode: run.exitCode ?? -1, leaks: found.leaks ?? 0, corruptions: found.corruptions ?? 0, checkErrors: found['check-errors'] ?? 0 };
}

/** Checks that qemu-img check finds the image clean: exit 0, no leaked cluster, no corruption, no error. */
export async function expectCheckClean(image: string, role: string): Promise<void> {
  const check = await checkOf(image);
  expect(check, `qemu-img check of ${role} ${image}`).to.deep.equal({ exitCode: 0, leaks: 0, corruptions: 0, checkErrors: 0 });
}
