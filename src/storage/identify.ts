// Reads the identity of what is at a path now (see volume-identity.ts): a file's device, inode and birth time (statx),
// or its inode generation where the file system keeps no birth time; a loop device's backing file and offset; a
// device-mapper device's uuid. Reading changes nothing.
import { readFile, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { VolmergeError } from '../errors.js';
import { run } from '../os/run.js';
import { parseAgainst } from '../schema.js';
import { formatBlockIdentity, formatFileIdentity, type FileIdentity } from './volume-identity.js';

let birthTimesReal: Promise<boolean> | undefined;

/**
 * Whether stat reports real birth times in this process. Without statx (an old kernel, a seccomp filter) libuv falls
 * back to stat(2) and reports the change time as birth time, which moves with every write: then none is used. procfs
 * keeps no birth time, so statx reports 0 for /proc/version and the fallback its change time.
 */
export function birthTimesAreReal(): Promise<boolean> {
  birthTimesReal ??= stat('/proc/version', { bigint: true }).then(
    (facts) => facts.birthtimeNs === 0n && facts.ctimeNs !== 0n,
    () => false,
  );
  return birthTimesReal;
}

/** The inode generation of a file (lsattr -v, FS_IOC_GETVERSION), or undefined where the file system keeps none. */
async function inodeGeneration(path: string): Promise<string | undefined> {
  const result = await run(['lsattr', '-vd', path]).catch(() => undefined);
  if (!result || result.exitCode !== 0) return undefined;
  return /^\s*(\d+)\s/.exec(result.stdout)?.[1];
}

/** A file's identity parts from its stat: birth time where the file system gives one, else the inode generation, else none. */
export async function fileIdentityParts(path: string, facts: BigIntStats): Promise<Omit<FileIdentity, 'kind'>> {
  const parts = { dev: facts.dev.toString(), ino: facts.ino.toString() };
  if (facts.birthtimeNs > 0n && (await birthTimesAreReal())) return { ...parts, birthNs: facts.birthtimeNs.toString() };
  const generation = await inodeGeneration(path);
  return generation === undefined ? parts : { ...parts, generation };
}

/** The identity of the regular file at path (stat given when the caller has it, with bigint: true). */
export async function fileIdentity(path: string, facts?: BigIntStats): Promise<string> {
  return formatFileIdentity(await fileIdentityParts(path, facts ?? (await stat(path, { bigint: true }))));
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

interface LosetupReport {
  loopdevices: { name: string; 'back-ino'?: number | string | null; 'back-maj:min'?: string | null; offset?: number | string | null }[];
}

/** The Linux st_dev of MAJ:MIN (glibc's makedev), as stat reports a file's device. */
export function devOf(majorMinor: string): string {
  const [major, minor] = majorMinor.trim().split(':').map((part) => BigInt(part));
  if (major === undefined || minor === undefined) throw new Error(`not MAJ:MIN: ${majorMinor}`);
  return (((major & 0xfffff000n) << 32n) | ((major & 0xfffn) << 8n) | ((minor & 0xffffff00n) << 12n) | (minor & 0xffn)).toString();
}

/** A loop device's backing file, as the kernel holds it (device and inode, by losetup), with its birth when its path still names it. */
async function loopBacking(device: string, sysDir: string): Promise<{ offset: string; backing: Omit<FileIdentity, 'kind'> }> {
  const result = await run(['losetup', '--json', '--list', '--output', 'NAME,BACK-INO,BACK-MAJ:MIN,OFFSET', device]);
  if (result.exitCode !== 0) {
    throw new VolmergeError('not-found', `${device}: losetup cannot read its backing file (exit ${result.exitCode}): ${result.stderr.trim().split('\n')[0] ?? ''}`);
  }
  const row = parseAgainst<LosetupReport>('losetup.schema.json', result.stdout, `losetup --list ${device}`).loopdevices[0];
  if (!row || row['back-ino'] === undefined || row['back-ino'] === null || !row['back-maj:min']) {
    throw new VolmergeError('not-found', `${device}: losetup names no backing file`);
  }
  const backing = { dev: devOf(row['back-maj:min']), ino: String(row['back-ino']) };
  const offset = String(row.offset ?? (await readOptional(`${sysDir}/loop/offset`)) ?? '0');
  const path = await readOptional(`${sysDir}/loop/backing_file`);
  if (!path || path.endsWith(' (deleted)')) return { offset, backing };
  const facts = await stat(path, { bigint: true }).catch(() => undefined);
  // The path may name another file now (the attached one renamed or deleted): its birth would not be the backing file's.
  if (!facts || facts.dev.toString() !== backing.dev || facts.ino.toString() !== backing.ino) return { offset, backing };
  return { offset, backing: await fileIdentityParts(path, facts) };
}

/** The identity of a block device that is not an LV: its backing file and offset for a loop device, its uuid for device-mapper. */
export async function blockIdentity(device: string, major: number, minor: number, dmUuid?: string): Promise<string> {
  const sysDir = `/sys/dev/block/${major}:${minor}`;
  const head = { major: String(major), minor: String(minor) };
  if ((await readOptional(`${sysDir}/loop/backing_file`)) !== undefined) {
    return formatBlockIdentity({ ...head, loop: await loopBacking(device, sysDir).then(({ offset, backing }) => ({ offset, backing: { kind: 'file' as const, ...backing } })) });
  }
  return formatBlockIdentity(dmUuid ? { ...head, dm: dmUuid } : head);
}
