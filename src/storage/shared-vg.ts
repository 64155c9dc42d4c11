// Shared volume groups (lvmlockd with sanlock or dlm): recognise one, and activate its LVs exclusively on this host,
// remembering how each was active before so that it can be put back. A lock error never reads as "volume gone".
import { run } from '../os/run.js';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { parseAgainst } from '../schema.js';
import { classifyLvsFailure, lvmCommand, readLv, runLvm } from './lvm.js';

/** The lock types of a shared VG (vgs' vg_lock_type); an empty one is a local VG. */
export const SHARED_LOCK_TYPES: readonly string[] = ['sanlock', 'dlm'];

/** How a VG is locked. */
export interface VgLocking {
  vg: string;
  /** '' for a local VG, 'sanlock' or 'dlm' for a shared one (anything else is refused). */
  lockType: string;
  shared: boolean;
  extentSize: number;
}

interface VgsReport {
  report: { vg: Array<Record<string, string>> }[];
}

/** Whether a vg_lock_type names a shared VG; an unknown non-empty type is refused rather than guessed. */
export function isSharedLockType(lockType: string, vg: string): boolean {
  if (lockType === '' || lockType === 'none') return false;
  if (SHARED_LOCK_TYPES.includes(lockType)) return true;
  throw new VolmergeError('unsupported', `volume group ${vg} has lock type "${lockType}"; volmerge knows local VGs and shared ones locked by lvmlockd (sanlock, dlm)`);
}

/** Reads how a VG is locked (vgs, JSON, schema-checked); 'vg-missing' only when vgs said so, 'lvm-failed' otherwise. */
export async function readVgLocking(vg: string): Promise<VgLocking> {
  const result = await runLvm(['vgs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,vg_lock_type,vg_lock_args,vg_extent_size', vg]);
  if (result.exitCode !== 0) {
    const missing = classifyLvsFailure(result.stderr) === 'vg-missing';
    throw new VolmergeError(
      missing ? 'vg-missing' : 'lvm-failed',
      missing ? `volume group ${vg} does not exist` : `volume group ${vg}: vgs failed (exit ${result.exitCode}): ${firstLine(result.stderr)}; its state is unknown, nothing was changed`,
      { argv: result.argv, exitCode: result.exitCode, stderr: result.stderr },
    );
  }
  const row = parseAgainst<VgsReport>('vgs.schema.json', result.stdout, `vgs ${vg}`).report[0]?.vg[0];
  if (!row) throw new VolmergeError('vg-missing', `volume group ${vg}: vgs succeeded but lists no such volume group`);
  const lockType = row.vg_lock_type ?? '';
  return { vg, lockType, shared: isSharedLockType(lockType, vg), extentSize: Number(row.vg_extent_size ?? 0) };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

/** What an lvchange activation failure means: another host holds the lock, lock trouble here, a missing LV or VG, or another failure. */
export type ActivationFailure = 'locked-by-other-host' | 'lock-failed' | 'lv-missing' | 'vg-missing' | 'lvm-failed';

/** Classifies lvchange's stderr; lock messages are looked at first, so that a lock error never reads as "gone". */
export function classifyActivationFailure(stderr: string): ActivationFailure {
  if (/locked by other host|held by other host|lock held by another host/i.test(stderr)) return 'locked-by-other-host';
  if (/failed lock|lockspace|lvmlockd|global lock failed|lock failed|Failed to lock/i.test(stderr)) return 'lock-failed';
  const gone = classifyLvsFailure(stderr);
  return gone === 'lvm-failed' ? 'lvm-failed' : gone;
}

/** How an LV is active on this host: not at all, with the exclusive lock, or with a shared one. */
export type LocalActivation = 'inactive' | 'exclusive' | 'shared';

/** The lock mode lvmlockd holds here for an LV UUID ('LK LV ex UUID' lines of lvmlockctl --info), or undefined. */
export function lockModeFromInfo(info: string, lvUuid: string): 'ex' | 'sh' | undefined {
  for (const line of info.split('\n')) {
    const match = /^LK LV (ex|sh|un) (\S+)$/.exec(line.trim());
    if (match && match[2] === lvUuid && (match[1] === 'ex' || match[1] === 'sh')) return match[1];
  }
  return undefined;
}

/** How an LV of a shared VG is active here: lvs says whether it is active, lvmlockctl which lock holds it (lvs cannot tell). */
export async function localActivation(vg: string, lv: string): Promise<LocalActivation> {
  const facts = await readLv(vg, lv);
  if (!facts.activeLocally) return 'inactive';
  const info = await run([lvmCommand('lvmlockctl'), '--info']).catch(() => undefined);
  const mode = info && info.exitCode === 0 && facts.uuid ? lockModeFromInfo(info.stdout, facts.uuid) : undefined;
  if (mode === 'sh') return 'shared';
  if (mode === undefined) log.debug(`${vg}/${lv} is active here but lvmlockctl --info names no lock for it; taken as exclusive`);
  return 'exclusive';
}

/** The error for an activation that lvchange refused. */
export function activationError(vg: string, lv: string, what: string, stderr: string, argv: readonly string[], exitCode: number): VolmergeError {
  const details = { argv, exitCode, stderr };
  const cause = firstLine(stderr);
  switch (classifyActivationFailure(stderr)) {
    case 'locked-by-other-host':
      return new VolmergeError(
        'locked-by-other-host',
        `${what} ${vg}/${lv} is locked by another host of the shared VG (${cause}): it is being merged or used there; nothing was changed. ` +
          'Retry later: a host that died releases its locks once its sanlock lease expires (about 2 to 3 minutes)',
        details,
      );
    case 'lock-failed':
      return new VolmergeError('lvm-failed', `${what} ${vg}/${lv}: LVM could not take its lock (${cause}); is lvmlockd running and the lockspace started (vgchange --lockstart ${vg})? Nothing was changed`, details);
    case 'lv-missing':
      return new VolmergeError('lv-missing', `${what} ${vg}/${lv}: logical volume does not exist`, details);
    case 'vg-missing':
      return new VolmergeError('vg-missing', `${what} ${vg}/${lv}: volume group ${vg} does not exist`, details);
    default:
      return new VolmergeError('lvm-failed', `${what} ${vg}/${lv}: lvchange failed (exit ${exitCode}): ${cause}; nothing was changed`, details);
  }
}

/** Activates an LV exclusively on this host (lvchange -aey) and says how it was active before; refuses at once when another host holds it. */
export async function activateExclusively(vg: string, lv: string, what = 'volume'): Promise<LocalActivation> {
  const before = await localActivation(vg, lv);
  if (before === 'exclusive') return before;
  const result = await runLvm(['lvchange', '-aey', `${vg}/${lv}`]);
  if (result.exitCode !== 0) throw activationError(vg, lv, what, result.stderr, result.argv, result.exitCode);
  log.debug(`${vg}/${lv}: activated exclusively (was ${before})`);
  return before;
}

/** Puts an LV back as it was active before activateExclusively: deactivated, or back to a shared lock. */
export async function restoreActivation(vg: string, lv: string, before: LocalActivation): Promise<void> {
  if (before === 'exclusive') return;
  const result = await runLvm(['lvchange', before === 'inactive' ? '-an' : '-asy', `${vg}/${lv}`]);
  if (result.exitCode !== 0) throw activationError(vg, lv, 'volume', result.stderr, result.argv, result.exitCode);
}
