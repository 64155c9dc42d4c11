// A chain whose base is an LV of a shared VG (lvmlockd): found from the paths alone (the LVs may be inactive on this
// host), held by activating its volumes exclusively here for the length of a job, and put back as it was afterwards.
import { hostname } from 'node:os';
import { ChainActivation } from '../engine/activation-record.js';
import { asVolmergeError } from '../errors.js';
import { log } from '../log.js';
import { bootId } from '../os/proc.js';
import { activateExclusively, readVgLocking, restoreActivation, type LocalActivation } from '../storage/shared-vg.js';
import { lvNamesOfDevPath } from '../storage/volume.js';
import type { JobStore } from '../engine/store.js';
import { SharedVgJobStore } from '../engine/shared-vg-store.js';

/** An LV by name. */
export interface LvName {
  vg: string;
  lv: string;
}

/** The volumes of a chain on a shared VG that a job must hold exclusively. */
export interface SharedChain {
  /** The shared VG of base: the job's state lives there. */
  vg: string;
  base: LvName;
  /** Top, when it is an LV of a shared VG too (a top elsewhere needs no cluster lock). */
  top?: LvName;
  /** Top's child (an internal merge rebases it onto base), when it is an LV of a shared VG. */
  child?: LvName;
  /** base's identity as resolveVolume gives it (lv:VG/LV), known without activating base: the chain lock's key. */
  baseIdentity: string;
}

/** An LV path's names when its VG is shared (vg, already known shared, saves a vgs). */
async function sharedLvOf(path: string | undefined, sharedVg: string): Promise<LvName | undefined> {
  const names = path === undefined ? undefined : lvNamesOfDevPath(path);
  if (!names) return undefined;
  if (names.vg === sharedVg) return names;
  return (await readVgLocking(names.vg).catch(() => undefined))?.shared === true ? names : undefined;
}

/** The shared chain of a request, or undefined when base is not /dev/VG/LV of a shared VG (the job then runs as on any host). */
export async function sharedChainOf(top: string, base: string, child?: string): Promise<SharedChain | undefined> {
  const baseName = lvNamesOfDevPath(base);
  if (!baseName) return undefined;
  const baseVg = await readVgLocking(baseName.vg).catch((error: unknown) => {
    // Not a VG at all (some other /dev/X/Y): the ordinary path reports it; any other failure is not a guess we make.
    if (asVolmergeError(error).code === 'vg-missing') return undefined;
    throw error;
  });
  if (!baseVg?.shared) return undefined;
  const chain: SharedChain = { vg: baseName.vg, base: baseName, baseIdentity: `lv:${baseName.vg}/${baseName.lv}` };
  const topName = await sharedLvOf(top, baseName.vg);
  if (topName) chain.top = topName;
  const childName = await sharedLvOf(child, baseName.vg);
  if (childName) chain.child = childName;
  return chain;
}

/** An LV that a job activated, and how it was before. */
export interface Held extends LvName {
  before: LocalActivation;
}

/** Puts back what was activated, last first, as it was before the job (see ChainActivation.toLeave); failures are logged (the merge's outcome stands). */
export async function putBackChain(held: readonly Held[], chain: ChainActivation | undefined): Promise<void> {
  for (const volume of [...held].reverse()) {
    const { state, why } = chain ? chain.toLeave(volume) : { state: volume.before };
    try {
      await restoreActivation(volume.vg, volume.lv, state);
      if (why) log.info(`${volume.vg}/${volume.lv}: put back ${state === 'inactive' ? 'to inactive' : 'to a shared lock'}: ${why}`);
    } catch (error) {
      // The job itself may have removed it (remove-top).
      if (asVolmergeError(error).code === 'lv-missing') continue;
      log.warn(`${volume.vg}/${volume.lv}: could not be put back ${state === 'inactive' ? 'to inactive' : 'to a shared lock'}: ${(error as Error).message}`);
    }
  }
}

/**
 * Runs body with base and top activated exclusively on this host and the job state in the shared VG's job LVs; a
 * volume held by another host refuses the job at once ('locked-by-other-host') with nothing changed. Afterwards every
 * volume is put back as it was before the job (deactivated, or to its shared lock): as the job's journal recorded it on
 * this boot when this run found it active exclusively (a killed run of the job left it so), as found otherwise; the
 * job LVs too.
 */
export async function withSharedChain<T>(chain: SharedChain, stateDir: string, body: (store: JobStore) => Promise<T>): Promise<T> {
  const held: Held[] = [];
  const store = new SharedVgJobStore(chain.vg, chain.base.lv, stateDir);
  let activation: ChainActivation | undefined;
  try {
    for (const [role, volume] of [['base', chain.base], ['top', chain.top], ['child', chain.child]] as const) {
      if (!volume || held.some((h) => h.vg === volume.vg && h.lv === volume.lv)) continue;
      held.push({ ...volume, before: await activateExclusively(volume.vg, volume.lv, role) });
    }
    activation = new ChainActivation(held, { bootId: await bootId(), host: hostname() });
    store.holdsChain(activation);
    return await body(store);
  } finally {
    await store.close();
    await putBackChain(held, activation);
  }
}
