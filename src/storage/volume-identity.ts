// What makes a volume the same volume over time. An identity is a string (journals, marks and locks keep it):
//   file:DEV:INO[:bBIRTH_NS | :gGENERATION]      a file; its birth time, or its inode generation where there is no birth time
//   lv:VG/LV[:uUUID]                             an LV; its UUID
//   block:MAJ:MIN[:loop:OFFSET:FILE | :dm:UUID]  a block device; a loop device's backing file and offset, a dm device's uuid
// Without the part in brackets (journals of earlier releases, file systems that give neither) it is weak: it names
// whatever has that device and inode now. The live key (the part before the brackets) is what two volumes that exist
// at the same moment never share: the chain lock is keyed by it.

/** A parsed file identity. */
export interface FileIdentity {
  kind: 'file';
  dev: string;
  ino: string;
  /** Birth time in nanoseconds since the epoch (statx btime). */
  birthNs?: string;
  /** The inode generation (FS_IOC_GETVERSION), where there is no birth time. */
  generation?: string;
}

/** A parsed LV identity. */
export interface LvIdentity {
  kind: 'lv';
  vg: string;
  lv: string;
  uuid?: string;
}

/** A parsed block device identity. */
export interface BlockIdentity {
  kind: 'block';
  major: string;
  minor: string;
  loop?: { offset: string; backing: FileIdentity };
  dm?: string;
}

/** Any parsed identity. */
export type ParsedIdentity = FileIdentity | LvIdentity | BlockIdentity;

/** The identity string of a file. */
export function formatFileIdentity(file: Omit<FileIdentity, 'kind'>): string {
  const qualifier = file.birthNs !== undefined ? `:b${file.birthNs}` : file.generation !== undefined ? `:g${file.generation}` : '';
  return `file:${file.dev}:${file.ino}${qualifier}`;
}

/** The identity string of an LV. */
export function formatLvIdentity(vg: string, lv: string, uuid?: string): string {
  return `lv:${vg}/${lv}${uuid ? `:u${uuid}` : ''}`;
}

/** The identity string of a block device. */
export function formatBlockIdentity(block: Omit<BlockIdentity, 'kind'>): string {
  const head = `block:${block.major}:${block.minor}`;
  if (block.loop) return `${head}:loop:${block.loop.offset}:${formatFileIdentity(block.loop.backing)}`;
  return block.dm ? `${head}:dm:${block.dm}` : head;
}

function parseFile(rest: string): FileIdentity | undefined {
  const match = /^(\d+):(\d+)(?::([bg])(\d+))?$/.exec(rest);
  if (!match?.[1] || !match[2]) return undefined;
  const file: FileIdentity = { kind: 'file', dev: match[1], ino: match[2] };
  if (match[3] === 'b' && match[4]) file.birthNs = match[4];
  if (match[3] === 'g' && match[4]) file.generation = match[4];
  return file;
}

function parseBlock(rest: string): BlockIdentity | undefined {
  const match = /^(\d+):(\d+)(?::(loop|dm):(.+))?$/.exec(rest);
  if (!match?.[1] || !match[2]) return undefined;
  const block: BlockIdentity = { kind: 'block', major: match[1], minor: match[2] };
  if (match[3] === 'dm' && match[4]) block.dm = match[4];
  if (match[3] === 'loop' && match[4]) {
    const loop = /^(\d+):file:(.+)$/.exec(match[4]);
    const backing = loop?.[2] ? parseFile(loop[2]) : undefined;
    if (!loop?.[1] || !backing) return undefined;
    block.loop = { offset: loop[1], backing };
  }
  return block;
}

/** Parses an identity string; undefined for one this release does not know (compared as a plain string then). */
export function parseIdentity(identity: string): ParsedIdentity | undefined {
  const colon = identity.indexOf(':');
  const kind = identity.slice(0, colon);
  const rest = identity.slice(colon + 1);
  if (kind === 'file') return parseFile(rest);
  if (kind === 'block') return parseBlock(rest);
  if (kind === 'lv') {
    const match = /^([^/:]+)\/([^/:]+)(?::u(\S+))?$/.exec(rest);
    if (!match?.[1] || !match[2]) return undefined;
    return { kind: 'lv', vg: match[1], lv: match[2], ...(match[3] ? { uuid: match[3] } : {}) };
  }
  return undefined;
}

/** The live key of an identity: what no two volumes that exist at the same moment share (file:DEV:INO, block:MAJ:MIN, lv:VG/LV). */
export function liveKeyOf(identity: string): string {
  const parsed = parseIdentity(identity);
  if (!parsed) return identity;
  if (parsed.kind === 'file') return `file:${parsed.dev}:${parsed.ino}`;
  if (parsed.kind === 'block') return `block:${parsed.major}:${parsed.minor}`;
  return `lv:${parsed.vg}/${parsed.lv}`;
}

/** Whether an identity says more than its live key (a birth time, a generation, a UUID, a backing file). */
export function isStrongIdentity(identity: string): boolean {
  return liveKeyOf(identity) !== identity;
}

/** When the current volume came into being, in ms since the epoch, if known: a file's (or a loop device's backing file's) birth, an LV's creation. */
export function bornAtMs(identity: string, lvCreatedAtMs?: number): number | undefined {
  const parsed = parseIdentity(identity);
  if (parsed?.kind === 'file' && parsed.birthNs) return Number(BigInt(parsed.birthNs) / 1_000_000n);
  if (parsed?.kind === 'block' && parsed.loop?.backing.birthNs) return Number(BigInt(parsed.loop.backing.birthNs) / 1_000_000n);
  if (parsed?.kind === 'lv') return lvCreatedAtMs;
  return undefined;
}
