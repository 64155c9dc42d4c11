// The bitmap steps of a live merge, each one QMP transaction that probes first and does only what is still to do,
// so that a step run twice (after a crash) changes nothing more.
import { VolmergeError } from '../errors.js';
import type { QmpClient } from '../qemu/qmp-client.js';
import type { LiveBitmapPlan } from './bitmap-plan.js';
import type { LiveChain } from './chain.js';
import { queryNodes, type LiveBitmap, type NamedNode } from './queries.js';
import { reopenBase, reopenVolume } from './reopen.js';

/** One action of a QMP transaction. */
export interface TransactionAction {
  type: string;
  data: Record<string, unknown>;
}

/** The node as qemu holds it now; 'bad-chain' when the VM no longer has it. */
export async function readNode(client: QmpClient, name: string, path: string): Promise<NamedNode> {
  const node = (await queryNodes(client)).find((candidate) => candidate['node-name'] === name);
  if (!node) throw new VolmergeError('bad-chain', `${path}: the VM behind ${client.peer} no longer has node ${name}`);
  return node;
}

/** Runs the actions as one transaction (all or none); nothing to do is no call. */
export async function runTransaction(client: QmpClient, actions: readonly TransactionAction[]): Promise<void> {
  if (actions.length > 0) await client.call('transaction', { actions });
}

/** Stops base's merge targets from recording: the commit's copy would otherwise mark all of top's data in them. */
export async function disableForJob(client: QmpClient, chain: LiveChain, plan: LiveBitmapPlan): Promise<void> {
  const bitmaps = (await readNode(client, chain.base.format, chain.base.path))['dirty-bitmaps'] ?? [];
  const recording = new Set(bitmaps.filter((b) => b.recording).map((b) => b.name));
  const node = chain.base.format;
  await runTransaction(
    client,
    plan.disable.filter((name) => recording.has(name)).map((name) => ({ type: 'block-dirty-bitmap-disable', data: { node, name } })),
  );
}

/**
 * Enables base bitmaps again (after a cancel: those disableForJob stopped). On a read-only base qemu would enable them
 * in memory only, and its image would keep them disabled: base is reopened read-write for it, and read-only again.
 */
export async function enableAgain(client: QmpClient, chain: LiveChain, names: readonly string[]): Promise<void> {
  const base = await readNode(client, chain.base.format, chain.base.path);
  const stopped = new Set((base['dirty-bitmaps'] ?? []).filter((b) => !b.recording).map((b) => b.name));
  const node = chain.base.format;
  const actions = names.filter((name) => stopped.has(name)).map((name) => ({ type: 'block-dirty-bitmap-enable', data: { node, name } }));
  if (actions.length === 0) return;
  if (base.ro) await reopenBase(client, chain, false);
  await runTransaction(client, actions);
  if (base.ro) await reopenBase(client, chain, true);
}

/**
 * Removes the inconsistent bitmaps that the plan drops (--drop-inconsistent) from top and base; a read-only node is
 * reopened read-write for it and read-only again, which stores its bitmap directory without them. A bitmap already
 * gone counts as removed. Returns the names removed.
 */
export async function dropInconsistentBitmaps(client: QmpClient, chain: LiveChain, plan: LiveBitmapPlan): Promise<string[]> {
  const removed: string[] = [];
  for (const which of ['top', 'base'] as const) {
    const volume = chain[which];
    const node = await readNode(client, volume.format, volume.path);
    const present = (plan.drop ?? []).filter((name) => (node['dirty-bitmaps'] ?? []).some((b) => b.name === name));
    if (present.length === 0) continue;
    if (node.ro) await reopenVolume(client, chain, which, false);
    await runTransaction(client, present.map((name) => ({ type: 'block-dirty-bitmap-remove', data: { node: volume.format, name } })));
    if (node.ro) await reopenVolume(client, chain, which, true);
    removed.push(...present.map((name) => `${name} in ${which}`));
  }
  return removed;
}

/**
 * Removes the stale bitmaps from base. Run it before startCommit: the job's first burst ignores its speed limit and can
 * fill base before anything else runs, and removing a bitmap needs a free cluster (a new bitmap directory), so a prune
 * after the start can fail with ENOSPC. Base is read-only in the VM until block-commit reopens it read-write; a read-only
 * base is reopened read-write here (block-commit would do so anyway, and cancel makes it read-only again). A bitmap
 * already gone counts as removed.
 */
export async function pruneLiveBitmaps(client: QmpClient, chain: LiveChain, plan: LiveBitmapPlan): Promise<void> {
  const base = await readNode(client, chain.base.format, chain.base.path);
  const present = new Set((base['dirty-bitmaps'] ?? []).map((b) => b.name));
  const stale = plan.prune.filter((name) => present.has(name));
  if (stale.length === 0) return;
  if (base.ro) await reopenBase(client, chain, false);
  await runTransaction(client, stale.map((name) => ({ type: 'block-dirty-bitmap-remove', data: { node: chain.base.format, name } })));
}

/**
 * The transaction that carries top's bitmaps into base at the pivot: base's targets recording again, the missing ones
 * created (persistent, top's granularity), and every valid top bitmap merged into its namesake. baseNow: base's
 * bitmaps as they are now (a second run adds nothing twice; merging twice changes nothing).
 */
export function carryActions(chain: LiveChain, plan: LiveBitmapPlan, baseNow: readonly LiveBitmap[]): TransactionAction[] {
  const node = chain.base.format;
  const byName = new Map(baseNow.map((bitmap) => [bitmap.name, bitmap]));
  const granularity = new Map(plan.add.map((bitmap) => [bitmap.name, bitmap.granularity]));
  const actions: TransactionAction[] = [];
  for (const name of plan.merge) {
    const existing = byName.get(name);
    if (!existing) {
      const size = granularity.get(name) ?? chain.top.bitmaps.find((b) => b.name === name)?.granularity;
      actions.push({ type: 'block-dirty-bitmap-add', data: { node, name, persistent: true, ...(size ? { granularity: size } : {}) } });
    } else if (!existing.recording) {
      actions.push({ type: 'block-dirty-bitmap-enable', data: { node, name } });
    }
  }
  for (const name of plan.merge) {
    actions.push({ type: 'block-dirty-bitmap-merge', data: { node, target: name, bitmaps: [{ node: chain.top.format, name }] } });
  }
  return actions;
}

/** Runs carryActions against base's bitmaps as qemu holds them now. */
export async function carryBitmaps(client: QmpClient, chain: LiveChain, plan: LiveBitmapPlan): Promise<void> {
  const base = await readNode(client, chain.base.format, chain.base.path);
  await runTransaction(client, carryActions(chain, plan, base['dirty-bitmaps'] ?? []));
}

/** Checks that base holds every carried bitmap, persistent, recording and consistent; 'verify-failed' otherwise. */
export async function verifyCarried(client: QmpClient, chain: LiveChain, plan: LiveBitmapPlan): Promise<void> {
  const bitmaps = (await readNode(client, chain.base.format, chain.base.path))['dirty-bitmaps'] ?? [];
  const byName = new Map(bitmaps.map((bitmap) => [bitmap.name, bitmap]));
  const wrong = plan.merge.filter((name) => {
    const bitmap = byName.get(name);
    return !bitmap || !bitmap.persistent || !bitmap.recording || bitmap.inconsistent === true;
  });
  if (wrong.length > 0) {
    throw new VolmergeError('verify-failed', `base ${chain.base.path}: bitmap ${wrong.join(', ')} is missing, temporary, disabled or inconsistent in the VM after the merge`);
  }
}
