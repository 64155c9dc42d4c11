// The base volume's generation, vdsm's idempotency key for merges: an LV tag VOLMERGE_GEN_<n>, or a sidecar file <base>.volmerge-gen.
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { VolmergeError } from '../errors.js';
import { changeLvTags, readLv } from './lvm.js';

/** Where a volume's generation is kept: beside a file, or as a tag of an LV. */
export type GenerationHolder = { kind: 'file'; path: string } | { kind: 'lv'; vg: string; lv: string };

/** The LV tag prefix; the tag is VOLMERGE_GEN_<n>. */
export const GENERATION_TAG_PREFIX = 'VOLMERGE_GEN_';
/** The suffix of a file volume's sidecar, which holds the generation as decimal digits and a newline. */
export const GENERATION_SIDECAR_SUFFIX = '.volmerge-gen';

/** The sidecar path of a file volume. */
export function sidecarPath(volumePath: string): string {
  return `${volumePath}${GENERATION_SIDECAR_SUFFIX}`;
}

/** The generation that an LV's tags record: 0 without a tag; more than one tag is an error naming the LV. */
export function generationFromTags(tags: readonly string[], lvName: string): number {
  const found = tags.filter((t) => t.startsWith(GENERATION_TAG_PREFIX));
  if (found.length === 0) return 0;
  if (found.length > 1) {
    throw new VolmergeError('needs-attention', `${lvName} carries several generation tags (${found.join(', ')}); keep exactly one with lvchange --deltag`);
  }
  return parseGeneration(found[0]?.slice(GENERATION_TAG_PREFIX.length) ?? '', `tag ${found[0]} of ${lvName}`);
}

/** The tag that records a generation. */
export function generationTag(generation: number): string {
  return `${GENERATION_TAG_PREFIX}${generation}`;
}

/** vdsm's largest generation: generations run 0..999 and wrap to 0 (vdsm keeps them in three ASCII digits). */
export const MAX_GENERATION = 999;

/** The generation after n, as vdsm counts: n + 1, and 0 after 999. */
export function nextGeneration(generation: number): number {
  return (generation + 1) % (MAX_GENERATION + 1);
}

function parseGeneration(text: string, source: string): number {
  if (!/^(0|[1-9][0-9]{0,2})$/.test(text)) {
    throw new VolmergeError('needs-attention', `${source} does not hold a generation from 0 to ${MAX_GENERATION} ("${text.slice(0, 40)}"); fix or remove it`);
  }
  return Number(text);
}

/** The LV tags to add and to remove to record a generation: every other generation tag goes; 0 is recorded by no tag. */
export function generationTagChange(tags: readonly string[], generation: number): { add: string[]; remove: string[] } {
  const wanted = generation === 0 ? undefined : generationTag(generation);
  const remove = tags.filter((t) => t.startsWith(GENERATION_TAG_PREFIX) && t !== wanted);
  const add = wanted && !tags.includes(wanted) ? [wanted] : [];
  return { add, remove };
}

/** A short name for messages. */
export function describeHolder(holder: GenerationHolder): string {
  return holder.kind === 'file' ? holder.path : `${holder.vg}/${holder.lv}`;
}

/** Reads the generation; a volume that never had one is at generation 0. */
export async function readGeneration(holder: GenerationHolder): Promise<number> {
  if (holder.kind === 'lv') return generationFromTags((await readLv(holder.vg, holder.lv)).tags, `${holder.vg}/${holder.lv}`);
  const sidecar = sidecarPath(holder.path);
  let text: string;
  try {
    text = await readFile(sidecar, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new VolmergeError('needs-attention', `cannot read the generation of ${holder.path} from ${sidecar}: ${(error as Error).message}`);
  }
  return parseGeneration(text.trim(), sidecar);
}

/** The error of a volume that is not at the generation a caller expected. */
function mismatch(holder: GenerationHolder, actual: number, expected: number): VolmergeError {
  return new VolmergeError(
    'generation-mismatch',
    `base ${describeHolder(holder)} is at generation ${actual}, not ${expected} as requested; it was merged or changed since: read its generation again before retrying`,
  );
}

/** Fails with 'generation-mismatch' unless the volume is at the expected generation. */
export async function assertGeneration(holder: GenerationHolder, expected: number): Promise<void> {
  const actual = await readGeneration(holder);
  if (actual !== expected) throw mismatch(holder, actual, expected);
}

/** Moves the generation from `expected` to the next one (after a successful merge; 999 wraps to 0); fails with 'generation-mismatch' if it moved meanwhile. */
export async function bumpGeneration(holder: GenerationHolder, expected: number): Promise<number> {
  const next = nextGeneration(expected);
  if (holder.kind === 'lv') {
    const { tags } = await readLv(holder.vg, holder.lv);
    const actual = generationFromTags(tags, `${holder.vg}/${holder.lv}`);
    if (actual !== expected) throw mismatch(holder, actual, expected);
    const change = generationTagChange(tags, next);
    await changeLvTags(holder.vg, holder.lv, change.add, change.remove);
  } else {
    await assertGeneration(holder, expected);
    await writeSidecar(sidecarPath(holder.path), `${next}\n`);
  }
  return next;
}

/** Replaces a small file atomically: temp file, fsync, rename, fsync the folder. */
async function writeSidecar(path: string, content: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  try {
    const file = await open(temp, 'w', 0o644);
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    const folder = await open(dirname(path), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw new VolmergeError('needs-attention', `cannot write the generation of ${path}: ${(error as Error).message}`);
  }
}
