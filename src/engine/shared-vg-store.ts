// The job state of chains on a shared VG: one small LV per job in that VG (volmerge_job_<job id>, tagged VOLMERGE_JOB and
// VOLMERGE_JOB_BASE_<base LV>), holding the journal in two slots and the bitmap backup (see job-lv-format.ts). Any host
// can open it once it holds the LV's exclusive lock, which sanlock grants another host only after the writer's lease is gone.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { extendLv, listLvs, readLv, runLvm } from '../storage/lvm.js';
import { activateExclusively, activationError, restoreActivation, type LocalActivation } from '../storage/shared-vg.js';
import type { ChainActivation } from './activation-record.js';
import { BACKUP_FILES } from './backup-images.js';
import { bytesForBackup, clearJobLv, MIN_JOB_LV_BYTES, readBackupArea, readNewestSlot, writeBackupArea, writeSlot } from './job-lv-format.js';
import { checkJournal, parseJournal, type Journal } from './journal.js';
import { readEachKey, type JobStore, type StoredJournal } from './store.js';

/** Prefix of a job LV's name. */
export const JOB_LV_PREFIX = 'volmerge_job_';
/** The tag every job LV carries. */
export const JOB_LV_TAG = 'VOLMERGE_JOB';
/** The tag naming the base LV of the job's chain: VOLMERGE_JOB_BASE_<base LV name>. */
export const JOB_BASE_TAG_PREFIX = 'VOLMERGE_JOB_BASE_';
/** The tag naming that base LV's UUID (job LVs of earlier releases have none): VOLMERGE_JOB_BASEUUID_<uuid> (not a JOB_BASE_TAG_PREFIX tag). */
export const JOB_BASE_UUID_TAG_PREFIX = 'VOLMERGE_JOB_BASEUUID_';

// Substrings that LVM keeps for its own hidden LVs.
const RESERVED = ['_cdata', '_cmeta', '_corig', '_cpool', '_cvol', '_mimage', '_mlog', '_pmspare', '_rimage', '_rmeta', '_tdata', '_tmeta', '_vdata', '_vorigin', '_wcorig'];

/** The LV name of a job: volmerge_job_<job id>, or a hash of the id when that would not be a valid LV name. */
export function jobLvName(jobId: string): string {
  const plain = `${JOB_LV_PREFIX}${jobId}`;
  if (plain.length <= 120 && /^[A-Za-z0-9+_.-]+$/.test(plain) && !RESERVED.some((r) => plain.includes(r))) return plain;
  return `${JOB_LV_PREFIX}h${createHash('sha256').update(jobId).digest('hex').slice(0, 40)}`;
}

const BACKUP_NAMES: readonly string[] = Object.values(BACKUP_FILES);

/** One job LV per job in a shared VG; the LVs it activates are put back (or removed, once their job is done) by close(). */
export class SharedVgJobStore implements JobStore {
  readonly kind = 'shared-vg' as const;
  /** Sequence number of the newest journal slot written or read, per job LV. */
  private readonly seq = new Map<string, number>();
  /** Job LVs this store activated or created, and how they were active before. */
  private readonly activated = new Map<string, LocalActivation>();
  /** How a job's run found its chain: every journal written keeps this boot's record of it (see holdsChain). */
  private chain?: ChainActivation;

  constructor(
    readonly vg: string,
    /** The base LV whose jobs this store sees. */
    readonly baseLv: string,
    readonly stateDir: string,
  ) {}

  describe(): string {
    return `the job LVs (${JOB_LV_PREFIX}*, tag ${JOB_BASE_TAG_PREFIX}${this.baseLv}) of shared VG ${this.vg}`;
  }

  locationOf(key: string): string {
    return `LV ${this.vg}/${key}`;
  }

  keyFor(jobId: string): string {
    return jobLvName(jobId);
  }

  private device(key: string): string {
    return `/dev/${this.vg}/${key}`;
  }

  private async withDevice<T>(key: string, flags: 'r' | 'r+', body: (handle: FileHandle) => Promise<T>): Promise<T> {
    let handle: FileHandle;
    try {
      handle = await open(this.device(key), flags);
    } catch (error) {
      throw new VolmergeError('lvm-failed', `job LV ${this.vg}/${key}: cannot open ${this.device(key)}: ${(error as Error).message}`);
    }
    try {
      return await body(handle);
    } finally {
      await handle.close();
    }
  }

  /** Creates the job LV of a new job (active exclusively here, from lvcreate on) and clears its slots. */
  private async create(key: string): Promise<void> {
    // The base's UUID tells this job's LV from those of an earlier LV of the same name, without reading the journal.
    const baseUuid = (await readLv(this.vg, this.baseLv).catch(() => undefined))?.uuid;
    const uuidTag = baseUuid ? ['--addtag', `${JOB_BASE_UUID_TAG_PREFIX}${baseUuid}`] : [];
    const argv = ['lvcreate', '-q', '-y', '-Wn', '-Zn', '-n', key, '-L', `${MIN_JOB_LV_BYTES}b`, '--addtag', JOB_LV_TAG, '--addtag', `${JOB_BASE_TAG_PREFIX}${this.baseLv}`, ...uuidTag, this.vg];
    const result = await runLvm(argv);
    if (result.exitCode !== 0) {
      if (/already exists/i.test(result.stderr)) {
        throw new VolmergeError('job-exists', `job LV ${this.vg}/${key} exists already (another job with this id); use another job id`);
      }
      throw activationError(this.vg, key, 'job LV', result.stderr, result.argv, result.exitCode);
    }
    this.activated.set(key, 'inactive');
    await mkdir(this.backupDir(key), { recursive: true, mode: 0o700 });
    await this.withDevice(key, 'r+', clearJobLv);
    this.seq.set(key, 0);
  }

  /** Tells the store how a job's run found the chain before activating it: the journals it writes keep that record. */
  holdsChain(chain: ChainActivation): void {
    this.chain = chain;
  }

  async write(journal: Journal, key: string): Promise<void> {
    this.chain?.stamp(journal, this.locationOf(key), !this.seq.has(key));
    checkJournal(journal, this.locationOf(key));
    if (!this.seq.has(key)) await this.create(key);
    const seq = (this.seq.get(key) ?? 0) + 1;
    await this.withDevice(key, 'r+', (handle) => writeSlot(handle, seq, `${JSON.stringify(journal, null, 2)}\n`));
    this.seq.set(key, seq);
  }

  /** Activates a job LV exclusively (refused at once when another host holds it: its job runs there). */
  private async hold(key: string): Promise<void> {
    if (this.activated.has(key)) return;
    const before = await activateExclusively(this.vg, key, 'job LV');
    this.activated.set(key, before);
    await mkdir(this.backupDir(key), { recursive: true, mode: 0o700 });
  }

  /** Reads one job LV's newest journal; undefined when none was ever written (the LV is then removed: it holds nothing). */
  private async readKey(key: string): Promise<StoredJournal | undefined> {
    const where = this.locationOf(key);
    const slot = await this.withDevice(key, 'r', readNewestSlot);
    if (!slot) {
      log.info(`${where} holds no journal (its job ended before writing one); removing it`);
      await this.remove(key).catch((error: unknown) => log.warn(`${where}: ${(error as Error).message}`));
      return undefined;
    }
    this.seq.set(key, slot.seq);
    try {
      const journal = parseJournal(slot.text, where);
      if (key !== this.keyFor(journal.jobId) && !(journal.resumedFrom && key === this.keyFor(journal.resumedFrom))) {
        throw new VolmergeError('needs-attention', `journal in ${where} names job ${journal.jobId}, not the LV's; the job needs attention`);
      }
      return { key, where, journal };
    } catch (error) {
      if (error instanceof VolmergeError) return { key, where, error };
      throw error;
    }
  }

  /** The job LVs of this store's base, found by tag in LVM's metadata (none is activated). */
  async keys(): Promise<string[]> {
    return (await listLvs(this.vg))
      .filter((lv) => lv.tags.includes(JOB_LV_TAG) && lv.tags.includes(`${JOB_BASE_TAG_PREFIX}${this.baseLv}`))
      .map((lv) => lv.name)
      .sort();
  }

  /** One job LV's journal, activated exclusively first (refused at once when another host holds it). */
  async read(key: string): Promise<StoredJournal | undefined> {
    await this.hold(key);
    return this.readKey(key);
  }

  /** The journals of this store's base: each job LV is activated exclusively and read. */
  async list(): Promise<StoredJournal[]> {
    return readEachKey(this);
  }

  /** Writes next into the old LV, then renames the LV to next's job; a crash between leaves resumedFrom naming the old LV. */
  async takeOver(next: Journal, from: string): Promise<string> {
    const to = this.keyFor(next.jobId);
    if (from !== to && (await listLvs(this.vg)).some((lv) => lv.name === to)) {
      throw new VolmergeError('job-exists', `job ${next.jobId} cannot take over ${this.locationOf(from)}: ${this.locationOf(to)} exists already; use another job id`);
    }
    await this.write(next, from);
    if (from === to) return to;
    const result = await runLvm(['lvrename', '-q', this.vg, from, to]);
    if (result.exitCode !== 0) throw activationError(this.vg, from, 'job LV', result.stderr, result.argv, result.exitCode);
    for (const map of [this.seq, this.activated] as Map<string, unknown>[]) {
      if (map.has(from)) {
        map.set(to, map.get(from));
        map.delete(from);
      }
    }
    await rm(this.backupDir(from), { recursive: true, force: true });
    return to;
  }

  backupDir(key: string): string {
    return join(this.stateDir, 'shared-vg', this.vg, key);
  }

  /** Copies the backup images into the job LV (grown first when they do not fit). */
  async saveBackup(key: string): Promise<void> {
    const files: { name: string; data: Buffer }[] = [];
    for (const name of BACKUP_NAMES) {
      // A volume with no bitmap to keep has no backup image.
      const data = await readFile(join(this.backupDir(key), name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (data) files.push({ name, data });
    }
    const needed = bytesForBackup(files.map((f) => f.data.length));
    if ((await readLv(this.vg, key)).sizeBytes < needed) await extendLv(this.vg, key, needed);
    await this.withDevice(key, 'r+', (handle) => writeBackupArea(handle, files));
  }

  /** Writes the backup images kept in the job LV into backupDir(key), where qemu-img reads them. */
  async loadBackup(key: string): Promise<void> {
    const dir = this.backupDir(key);
    const files = await this.withDevice(key, 'r', readBackupArea).catch((error: unknown) => {
      throw new VolmergeError('needs-attention', `the bitmap backup in ${this.locationOf(key)} cannot be read: ${(error as Error).message}`);
    });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const file of files) {
      if (!BACKUP_NAMES.includes(file.name)) continue;
      await writeFile(join(dir, file.name), file.data);
    }
  }

  async remove(key: string): Promise<void> {
    const result = await runLvm(['lvremove', '-q', '-y', `${this.vg}/${key}`]);
    if (result.exitCode !== 0 && !/Failed to find logical volume/i.test(result.stderr)) {
      throw activationError(this.vg, key, 'job LV', result.stderr, result.argv, result.exitCode);
    }
    this.activated.delete(key);
    this.seq.delete(key);
    await rm(this.backupDir(key), { recursive: true, force: true });
  }

  /** Puts back every job LV this store activated and still exists (kept for a later run, on any host), and drops local copies. */
  async close(): Promise<void> {
    for (const [key, before] of this.activated) {
      try {
        await restoreActivation(this.vg, key, before);
      } catch (error) {
        log.warn(`${this.locationOf(key)} could not be put back: ${(error as Error).message}`);
      }
      await rm(this.backupDir(key), { recursive: true, force: true }).catch(() => undefined);
    }
    this.activated.clear();
  }
}
