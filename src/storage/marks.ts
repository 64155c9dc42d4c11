// The mid-merge mark on base, from the start of the commit until verify passes: an LV tag VOLMERGE_MERGING_<job>,
// a sidecar <file>.volmerge-merging beside a file, or STATE_DIR/marks/<device number>.json for a plain block device.
// A sidecar or state-folder file names the identity of the volume it marks: one left behind by a volume that was
// removed says nothing of another volume that has its path or device now (markIsStale tells).
// The same mechanism marks a merged top as retired (not to be used): VOLMERGE_RETIRED_<job>, <file>.volmerge-retired.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { mkdirDurable, removeDurable, writeFileAtomic } from '../os/atomic-file.js';
import { changeLvTags, readLv } from './lvm.js';
import type { VolumeKind } from './volume.js';
import { liveKeyOf } from './volume-identity.js';

/** The LV tag prefix; the tag is VOLMERGE_MERGING_<job id>. */
export const MARK_TAG_PREFIX = 'VOLMERGE_MERGING_';
/** The suffix of a file volume's mark sidecar. */
export const MARK_SIDECAR_SUFFIX = '.volmerge-merging';
/** The LV tag prefix of a retired top; the tag is VOLMERGE_RETIRED_<job id>. */
export const RETIRED_TAG_PREFIX = 'VOLMERGE_RETIRED_';
/** The suffix of a retired file volume's sidecar. */
export const RETIRED_SIDECAR_SUFFIX = '.volmerge-retired';

/** What a mark says of a volume: base is mid-merge (finish it forward only), or top is retired (merged; nothing may use it). */
export type MarkKind = 'merging' | 'retired';

/** What a mark says: which job is merging into the volume, and since when. */
export interface MidMergeMark {
  jobId: string;
  since?: string;
  /** The state folder holding the job's journal (sidecars only). */
  stateDir?: string;
  /** The identity of the volume marked (sidecars written by this release; an LV's tag belongs to its LV). */
  identity?: string;
  /** Where the mark is, for messages: the tag or the sidecar's path. */
  where: string;
}

/** Where a volume's mark is kept (prefix: the LV tag's, MARK_TAG_PREFIX when absent). */
export type MarkHolder = { kind: 'lv'; vg: string; lv: string; prefix?: string } | { kind: 'sidecar'; path: string };

/** The parts of a volume that say where its mark goes (a Volume or a journal's record of one). */
export interface MarkableVolume {
  kind: VolumeKind;
  realPath: string;
  identity: string;
  lv?: { vg: string; name: string } | undefined;
}

/** Where the mark of this volume is kept; plain block devices keep theirs in the state folder (nothing beside /dev nodes survives). */
export function markHolderFor(volume: MarkableVolume, stateDir: string, markKind: MarkKind = 'merging'): MarkHolder {
  const retired = markKind === 'retired';
  if (volume.kind === 'lv' && volume.lv) return { kind: 'lv', vg: volume.lv.vg, lv: volume.lv.name, ...(retired ? { prefix: RETIRED_TAG_PREFIX } : {}) };
  if (volume.kind === 'file') return { kind: 'sidecar', path: `${volume.realPath}${retired ? RETIRED_SIDECAR_SUFFIX : MARK_SIDECAR_SUFFIX}` };
  // Named by the device number (the live key), as in every release; the identity inside tells which volume it was.
  return { kind: 'sidecar', path: join(stateDir, 'marks', `${liveKeyOf(volume.identity).replace(/[^A-Za-z0-9._-]+/g, '_')}${retired ? '.retired' : ''}.json`) };
}

/** The job named by a volume's mark, or undefined when it is not marked. */
export async function readMark(holder: MarkHolder): Promise<MidMergeMark | undefined> {
  if (holder.kind === 'lv') {
    const prefix = holder.prefix ?? MARK_TAG_PREFIX;
    const tags = (await readLv(holder.vg, holder.lv)).tags.filter((t) => t.startsWith(prefix));
    const tag = tags[0];
    return tag ? { jobId: tag.slice(prefix.length), where: `tag ${tags.join(', ')} of ${holder.vg}/${holder.lv}` } : undefined;
  }
  let text: string;
  try {
    text = await readFile(holder.path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new VolmergeError('needs-attention', `mid-merge mark ${holder.path} cannot be read: ${(error as Error).message}`);
  }
  try {
    const data = JSON.parse(text) as { jobId?: unknown; since?: unknown; stateDir?: unknown; identity?: unknown };
    if (typeof data.jobId !== 'string') throw new Error('no jobId');
    return {
      jobId: data.jobId,
      where: holder.path,
      ...(typeof data.since === 'string' ? { since: data.since } : {}),
      ...(typeof data.stateDir === 'string' ? { stateDir: data.stateDir } : {}),
      ...(typeof data.identity === 'string' ? { identity: data.identity } : {}),
    };
  } catch {
    // A damaged sidecar still means "mid-merge": never read it as unmarked.
    return { jobId: 'unknown', where: holder.path };
  }
}

/** Marks the volume (of this identity) as mid-merge by jobId; idempotent, and any other job's mark is replaced. */
export async function setMark(holder: MarkHolder, jobId: string, stateDir: string, identity: string): Promise<void> {
  if (holder.kind === 'lv') {
    const prefix = holder.prefix ?? MARK_TAG_PREFIX;
    const tag = `${prefix}${jobId}`;
    const { tags } = await readLv(holder.vg, holder.lv);
    const others = tags.filter((t) => t.startsWith(prefix) && t !== tag);
    const present = tags.includes(tag);
    await changeLvTags(holder.vg, holder.lv, present ? [] : [tag], others);
    return;
  }
  await mkdirDurable(join(holder.path, '..'));
  await writeFileAtomic(holder.path, `${JSON.stringify({ jobId, since: new Date().toISOString(), stateDir, identity })}\n`);
}

/** Takes the mark off; a volume that is not marked is fine. */
export async function clearMark(holder: MarkHolder): Promise<void> {
  if (holder.kind === 'lv') {
    const prefix = holder.prefix ?? MARK_TAG_PREFIX;
    const tags = (await readLv(holder.vg, holder.lv)).tags.filter((t) => t.startsWith(prefix));
    await changeLvTags(holder.vg, holder.lv, [], tags);
    return;
  }
  await removeDurable(holder.path);
}

/** A short name for messages. */
export function describeMarkHolder(holder: MarkHolder): string {
  return holder.kind === 'lv' ? `LV tag ${holder.prefix ?? MARK_TAG_PREFIX}* of ${holder.vg}/${holder.lv}` : holder.path;
}
