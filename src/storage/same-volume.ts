// Is the volume there now the one a journal or a mark recorded? Decided from the two identities (volume-identity.ts),
// the paths, and for a weak record the current volume's birth against the time of the record.
import { bornAtMs, liveKeyOf, parseIdentity, type FileIdentity } from './volume-identity.js';

/** A volume as a journal or a mark recorded it. */
export interface RecordedVolume {
  identity: string;
  /** Where it was (symlinks resolved), when known. */
  realPath?: string;
  /** When the record was made (ISO time): the volume existed then, so one born later is another. */
  recordedAt?: string;
}

/** A volume as it is now. */
export interface CurrentVolume {
  identity: string;
  realPath: string;
  /** An LV's creation time in ms since the epoch (lvs lv_time); a file's birth is in its identity. */
  lvCreatedAtMs?: number;
}

/**
 * same: the recorded volume; other: another volume (reason says why); unsure: a weak record that matches the device
 * and inode of a file at another path (a hard link, or a reused inode): the caller looks at the recorded path.
 */
export type Sameness = { verdict: 'same'; note?: string } | { verdict: 'other'; reason: string } | { verdict: 'unsure'; reason: string };

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A birth time in ns since the epoch, as an ISO time to the nanosecond. */
function birthText(ns: string | undefined): string {
  if (ns === undefined) return '?';
  const whole = BigInt(ns);
  return iso(Number(whole / 1_000_000_000n) * 1000).replace('.000Z', `.${(whole % 1_000_000_000n).toString().padStart(9, '0')}Z`);
}

/** A weak record (or one whose qualifier kind differs): the live key, then the current volume's birth against the record's time. */
function compareWeak(recorded: RecordedVolume, current: CurrentVolume, samePath: boolean): Sameness {
  const [recordedKey, currentKey] = [liveKeyOf(recorded.identity), liveKeyOf(current.identity)];
  const recordedFile = parseIdentity(recorded.identity);
  const currentFile = parseIdentity(current.identity);
  // A file system mounted again may number its device anew: the same inode at the same path still counts.
  const sameInodeElsewhere = recordedFile?.kind === 'file' && currentFile?.kind === 'file' && recordedFile.ino === currentFile.ino && samePath;
  if (recordedKey !== currentKey && !sameInodeElsewhere) return { verdict: 'other', reason: `it was ${recordedKey}, this is ${currentKey}` };
  const born = bornAtMs(current.identity, current.lvCreatedAtMs);
  const recordedAt = recorded.recordedAt ? Date.parse(recorded.recordedAt) : NaN;
  if (born !== undefined && Number.isFinite(recordedAt)) {
    // One that existed when the record was made, under the same live key, is the recorded one: two never share it at once.
    if (born <= recordedAt) return { verdict: 'same' };
    return { verdict: 'other', reason: `this one came into being at ${iso(born)}, after the record was made at ${iso(recordedAt)}` };
  }
  if (currentFile?.kind !== 'file' || samePath) return { verdict: 'same' };
  return { verdict: 'unsure', reason: `${currentKey} is the same device and inode, but the record was made at ${recorded.realPath ?? 'another path'} and neither birth time nor inode generation tells them apart` };
}

/** Two file identities that both carry the same kind of qualifier: inode and qualifier decide; the device too unless the path is the same. */
function compareStrongFiles(recorded: FileIdentity, current: FileIdentity, samePath: boolean): Sameness {
  if (recorded.ino !== current.ino) return { verdict: 'other', reason: `inode ${current.ino}, not ${recorded.ino}` };
  if (recorded.birthNs !== current.birthNs) {
    return { verdict: 'other', reason: `same inode ${current.ino}, but born at ${birthText(current.birthNs)}, not ${birthText(recorded.birthNs)}: the inode was reused` };
  }
  if (recorded.generation !== current.generation) return { verdict: 'other', reason: `same inode ${current.ino}, but generation ${current.generation ?? '?'}, not ${recorded.generation ?? '?'}: the inode was reused` };
  if (recorded.dev === current.dev) return { verdict: 'same' };
  return samePath
    ? { verdict: 'same', note: `device number ${recorded.dev} is ${current.dev} now (the file system was mounted again)` }
    : { verdict: 'other', reason: `device ${current.dev}, not ${recorded.dev}` };
}

function strongKind(file: FileIdentity): 'b' | 'g' | undefined {
  return file.birthNs !== undefined ? 'b' : file.generation !== undefined ? 'g' : undefined;
}

/** Whether a loop device's backing file is the recorded one: inode and qualifier (the device may change across boots). */
function sameBacking(recorded: FileIdentity, current: FileIdentity): boolean {
  const kind = strongKind(recorded);
  if (kind && kind === strongKind(current)) return compareStrongFiles(recorded, current, true).verdict === 'same';
  return recorded.dev === current.dev && recorded.ino === current.ino;
}

/** Decides whether the volume there now is the recorded one. */
export function compareVolumes(recorded: RecordedVolume, current: CurrentVolume): Sameness {
  const samePath = recorded.realPath !== undefined && recorded.realPath === current.realPath;
  const r = parseIdentity(recorded.identity);
  const c = parseIdentity(current.identity);
  if (!r || !c) return recorded.identity === current.identity ? { verdict: 'same' } : { verdict: 'other', reason: `it was ${recorded.identity}, this is ${current.identity}` };
  if (r.kind !== c.kind) return { verdict: 'other', reason: `it was a ${r.kind === 'lv' ? 'logical volume' : r.kind}, this is a ${c.kind === 'lv' ? 'logical volume' : c.kind}` };
  if (r.kind === 'file' && c.kind === 'file') {
    const kind = strongKind(r);
    return kind && kind === strongKind(c) ? compareStrongFiles(r, c, samePath) : compareWeak(recorded, current, samePath);
  }
  if (r.kind === 'lv' && c.kind === 'lv') {
    if (!r.uuid || !c.uuid) return compareWeak(recorded, current, samePath);
    return r.uuid === c.uuid ? { verdict: 'same' } : { verdict: 'other', reason: `LV UUID ${c.uuid}, not ${r.uuid}: the LV was made again` };
  }
  if (r.kind === 'block' && c.kind === 'block') {
    if (r.major !== c.major || r.minor !== c.minor) return { verdict: 'other', reason: `device ${c.major}:${c.minor}, not ${r.major}:${r.minor}` };
    if (r.loop) {
      if (!c.loop) return { verdict: 'other', reason: `loop device ${c.major}:${c.minor} has no backing file now, or is no loop device` };
      if (r.loop.offset !== c.loop.offset) return { verdict: 'other', reason: `the loop device reads its file from offset ${c.loop.offset}, not ${r.loop.offset}` };
      return sameBacking(r.loop.backing, c.loop.backing)
        ? { verdict: 'same' }
        : { verdict: 'other', reason: `loop device ${c.major}:${c.minor} was attached to another file (${formatBacking(c.loop.backing)}, not ${formatBacking(r.loop.backing)})` };
    }
    if (r.dm) return r.dm === c.dm ? { verdict: 'same' } : { verdict: 'other', reason: `device-mapper uuid ${c.dm ?? 'none'}, not ${r.dm}` };
    return compareWeak(recorded, current, samePath);
  }
  return { verdict: 'other', reason: `it was ${recorded.identity}, this is ${current.identity}` };
}

function formatBacking(file: FileIdentity): string {
  return `inode ${file.ino} of device ${file.dev}`;
}
