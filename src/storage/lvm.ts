// LVM through its commands: read one LV with lvs (JSON, bytes), extend, reduce, remove and tag it. A failed lvs never means "gone".
import { run, type CommandResult } from '../os/run.js';
import { VolmergeError } from '../errors.js';
import { parseAgainst } from '../schema.js';

/** What volmerge knows of one LV and its VG. */
export interface LvFacts {
  vg: string;
  name: string;
  sizeBytes: number;
  extentSize: number;
  vgFree: number;
  tags: string[];
  lockType: string;
  /** The LV's UUID (lvmlockd names its lock by it). */
  uuid?: string;
  /** Whether the LV is active on this host (for a shared VG: whatever the lock mode). */
  activeLocally?: boolean;
  /** When the LV was created, ms since the epoch (lv_time, to the second); absent when lvs did not say. */
  createdAtMs?: number;
}

interface LvsReport {
  report: { lv: Array<Record<string, string>> }[];
}

const LVS_FIELDS = 'lv_name,vg_name,lv_size,lv_tags,vg_extent_size,vg_free,lv_path,vg_lock_type,lv_uuid,lv_active_locally,lv_time';

/** The lvm binary prefix; VOLMERGE_LVM_BIN_DIR points at another folder (tests put failing wrappers there). */
export function lvmCommand(name: string): string {
  const dir = process.env.VOLMERGE_LVM_BIN_DIR;
  return dir ? `${dir}/${name}` : name;
}

/** Runs an LVM command (lvs, lvchange, ...); rejects only when it cannot start ('lvm-failed'). */
export async function runLvm(argv: string[]): Promise<CommandResult> {
  try {
    return await run([lvmCommand(argv[0] ?? ''), ...argv.slice(1)], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  } catch (error) {
    throw new VolmergeError('lvm-failed', `cannot run ${argv[0]}: ${(error as Error).message}; install lvm2`);
  }
}

/** Tells a missing LV, a missing VG and a failed command apart from lvs' stderr and exit code. */
export function classifyLvsFailure(stderr: string): 'lv-missing' | 'vg-missing' | 'lvm-failed' {
  if (/Volume group "[^"]*" not found|Volume group .* not found/i.test(stderr)) return 'vg-missing';
  if (/Failed to find logical volume|logical volume .* not found/i.test(stderr)) return 'lv-missing';
  return 'lvm-failed';
}

/** lv_time as ms since the epoch: LVM's default "2024-05-01 10:00:00 +0200", or seconds ("%s" as report/time_format); undefined otherwise. */
export function parseLvTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}T${match[2]}${match[3]}:${match[4]}`);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Parses one row of the lvs report into LvFacts. */
export function lvFactsFromRow(row: Record<string, string>): LvFacts {
  return {
    vg: row.vg_name ?? '',
    name: row.lv_name ?? '',
    sizeBytes: Number(row.lv_size),
    extentSize: Number(row.vg_extent_size),
    vgFree: Number(row.vg_free),
    tags: row.lv_tags ? row.lv_tags.split(',').filter((t) => t.length > 0) : [],
    lockType: row.vg_lock_type ?? '',
    ...(row.lv_uuid ? { uuid: row.lv_uuid } : {}),
    ...(row.lv_active_locally !== undefined ? { activeLocally: row.lv_active_locally.length > 0 } : {}),
    ...(parseLvTime(row.lv_time) !== undefined ? { createdAtMs: parseLvTime(row.lv_time) } : {}),
  };
}

/** Reads one LV; 'lv-missing' / 'vg-missing' only when lvs itself succeeded in saying so, 'lvm-failed' otherwise. */
export async function readLv(vg: string, lv: string): Promise<LvFacts> {
  const result = await runLvm(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', LVS_FIELDS, `${vg}/${lv}`]);
  if (result.exitCode !== 0) {
    const code = classifyLvsFailure(result.stderr);
    const what =
      code === 'vg-missing'
        ? `volume group ${vg} does not exist`
        : code === 'lv-missing'
          ? `logical volume ${vg}/${lv} does not exist`
          : `lvs failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n')[0] ?? ''}; the LV's state is unknown, nothing was changed`;
    throw new VolmergeError(code, `${vg}/${lv}: ${what}`, { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr });
  }
  const report = parseAgainst<LvsReport>('lvs.schema.json', result.stdout, `lvs ${vg}/${lv}`);
  const row = report.report[0]?.lv[0];
  if (!row) throw new VolmergeError('lv-missing', `${vg}/${lv}: lvs succeeded but lists no such logical volume`);
  return lvFactsFromRow(row);
}

/** Every LV of a VG (hidden ones such as lvmlock left out); a failed lvs is 'vg-missing' or 'lvm-failed', never an empty list. */
export async function listLvs(vg: string): Promise<LvFacts[]> {
  const result = await runLvm(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', LVS_FIELDS, vg]);
  if (result.exitCode !== 0) {
    const code = classifyLvsFailure(result.stderr) === 'vg-missing' ? 'vg-missing' : 'lvm-failed';
    const what = code === 'vg-missing' ? 'does not exist' : `cannot be listed: lvs failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n')[0] ?? ''}`;
    throw new VolmergeError(code, `volume group ${vg} ${what}`, { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr });
  }
  const report = parseAgainst<LvsReport>('lvs.schema.json', result.stdout, `lvs ${vg}`);
  return (report.report[0]?.lv ?? []).map(lvFactsFromRow);
}

/** Extends an LV to at least `bytes` (a multiple of the extent size); does nothing when it is already that big. */
export async function extendLv(vg: string, lv: string, bytes: number): Promise<LvFacts> {
  const before = await readLv(vg, lv);
  if (before.sizeBytes >= bytes) return before;
  const result = await runLvm(['lvextend', '--size', `${bytes}b`, `${vg}/${lv}`]);
  const after = await readLv(vg, lv);
  if (after.sizeBytes >= bytes) return after;
  throw new VolmergeError(
    'extend-failed',
    `${vg}/${lv}: lvextend to ${bytes} bytes failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n')[0] ?? ''}`,
    { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr },
  );
}

/**
 * Reduces an LV to `bytes` (a multiple of the extent size) with lvreduce --force (a qcow2 LV holds no file system);
 * does nothing when it is that small already. The caller makes sure the image ends below `bytes`.
 */
export async function reduceLv(vg: string, lv: string, bytes: number): Promise<LvFacts> {
  const before = await readLv(vg, lv);
  if (before.sizeBytes <= bytes) return before;
  const result = await runLvm(['lvreduce', '--force', '--size', `${bytes}b`, `${vg}/${lv}`]);
  const after = await readLv(vg, lv);
  if (after.sizeBytes <= bytes) return after;
  throw new VolmergeError(
    'shrink-failed',
    `${vg}/${lv}: lvreduce to ${bytes} bytes failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n')[0] ?? ''}; it is still ${after.sizeBytes} bytes`,
    { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr },
  );
}

/** Removes an LV (lvremove --yes); one that lvs says is gone counts as removed, a failed lvs is never read as gone. */
export async function removeLv(vg: string, lv: string): Promise<void> {
  const gone = async (): Promise<boolean> => {
    try {
      await readLv(vg, lv);
      return false;
    } catch (error) {
      if (error instanceof VolmergeError && (error.code === 'lv-missing' || error.code === 'vg-missing')) return true;
      throw error;
    }
  };
  if (await gone()) return;
  const result = await runLvm(['lvremove', '--yes', `${vg}/${lv}`]);
  if (await gone()) return;
  throw new VolmergeError(
    'remove-failed',
    `${vg}/${lv}: lvremove failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n')[0] ?? ''}; the LV is still there`,
    { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr },
  );
}

/** Adds and removes LV tags in one lvchange; adding a tag that is there (or removing one that is not) is fine. */
export async function changeLvTags(vg: string, lv: string, add: string[], remove: string[]): Promise<void> {
  if (add.length === 0 && remove.length === 0) return;
  const argv = ['lvchange'];
  for (const tag of add) argv.push('--addtag', tag);
  for (const tag of remove) argv.push('--deltag', tag);
  argv.push(`${vg}/${lv}`);
  const result = await runLvm(argv);
  if (result.exitCode !== 0) {
    throw new VolmergeError('lvm-failed', `${vg}/${lv}: lvchange of tags failed (exit ${result.exitCode}): ${result.stderr.trim()}`, {
      argv: result.argv,
      exitCode: result.exitCode,
      stderr: result.stderr,
    });
  }
}
