// What `volmerge merge` prints when it ends: the one JSON object of --json (schemas/merge-result.schema.json) and the
// human lines, for a merge that is done, planned, failed or interrupted (Ctrl-C, SIGTERM).
import type { Interruption, VolmergeError } from '../errors.js';
import type { MergeOutcome } from '../jobs/job-request.js';
import type { MergePlan } from '../merge/plan.js';
import type { StopSignal } from './interrupts.js';
import { planSummary, type PlanSummary } from './plan-summary.js';

/** How a merge was interrupted, as --json shows it: by which signal, and where the chain stands. */
export interface InterruptSummary {
  signal: StopSignal;
  /** merged: the merge was finished anyway (a live merge past its pivot). */
  chain: Interruption['chain'] | 'merged';
  resumeFrom?: string;
  /** The second signal: volmerge left at once, without waiting for the merge to stop. */
  leftAtOnce?: true;
  /** With leftAtOnce: the last step that had begun. */
  lastStep?: string;
}

/** The one object of `volmerge merge --json`. */
export interface MergeJson {
  status: 'done' | 'planned' | 'failed' | 'interrupted';
  plan: PlanSummary | null;
  usedSize?: number | null;
  /** Bitmaps the merge did not keep (--drop-bitmaps, --drop-inconsistent): the next backup of each must be a full one. */
  fullBackupNeeded?: string[];
  interrupted?: InterruptSummary;
  error?: { code: string; message: string };
  elapsedMs: number;
}

/** The bitmaps a merge's plan leaves behind: dropped as asked, or dropped as inconsistent. */
export function lostBitmaps(plan: MergePlan): string[] {
  return [...new Set([...(plan.bitmaps.drop ?? []), ...(plan.bitmaps.inconsistent ?? [])])].sort();
}

/** The JSON object of a merge that ended with an outcome (done or planned). */
export function outcomeJson(outcome: MergeOutcome, started: number, signal?: StopSignal): MergeJson {
  const done = outcome.status === 'done';
  return {
    status: outcome.status,
    plan: planSummary(outcome.plan),
    ...(done ? { usedSize: outcome.usedSize ?? null, fullBackupNeeded: lostBitmaps(outcome.plan) } : {}),
    ...(done && signal ? { interrupted: { signal, chain: 'merged' as const } } : {}),
    elapsedMs: Date.now() - started,
  };
}

/** The JSON object of a merge that threw: failed, or interrupted when a signal stopped it. */
export function errorJson(error: VolmergeError, plan: MergePlan | undefined, started: number, interrupted?: InterruptSummary): MergeJson {
  return {
    status: interrupted ? 'interrupted' : 'failed',
    plan: plan ? planSummary(plan) : null,
    ...(interrupted ? { interrupted } : {}),
    error: { code: error.code, message: error.message },
    elapsedMs: Date.now() - started,
  };
}

/** What an operator reads after a live merge (through libvirt when domain is given). */
function describeLiveDone(top: string, base: string, active: boolean, carried: readonly string[], domain?: string): string {
  const vm = domain ? `domain ${domain}` : 'the VM';
  const chain = active ? `${vm} writes to ${base} now` : `the volume above ${top} is backed by ${base} now`;
  const how = domain ? 'checked through libvirt' : 'in the VM';
  return `done (live${domain ? ', libvirt' : ''}): ${base} holds top's data and ${chain}; bitmaps ${carried.join(', ') || '(none)'} carried, persistent and enabled (${how}); ${top} is no longer used by ${vm}`;
}

/** The human lines of a merge that is done. */
export function doneLines(outcome: MergeOutcome, top: string, base: string, domain?: string): string[] {
  const lines: string[] = [];
  if (outcome.resumed) lines.push(`finished the merge that job ${outcome.resumed.jobId} had left at step ${outcome.resumed.fromStep}`);
  if (outcome.live) lines.push(describeLiveDone(top, base, outcome.live.active, outcome.plan.bitmaps.merge, domain));
  else lines.push(`done: ${base} holds top's data; bitmaps verified (${outcome.plan.bitmaps.merge.join(', ') || 'none'}), none in-use`);
  const dropped = outcome.plan.bitmaps.drop ?? [];
  if (dropped.length > 0) lines.push(`dropped top's bitmaps ${dropped.join(', ')} as asked: the next backup of this disk must be a full one`);
  const inconsistent = outcome.plan.bitmaps.inconsistent ?? [];
  if (inconsistent.length > 0) {
    lines.push(`dropped inconsistent bitmaps ${inconsistent.join(', ')} (removed from top and base, as --drop-inconsistent asked): the next backup of each must be a full one`);
  }
  if (typeof outcome.usedSize === 'number') lines.push(`base's image ends at ${outcome.usedSize} bytes (${outcome.plan.neededSize} planned)`);
  const end = outcome.plan.finalize;
  if (end?.child) lines.push(`child ${end.child.path} is backed by base now (${end.child.backingAfter})`);
  if (end?.removeTop) lines.push(`top ${top} removed`);
  else if (end?.retireTop) lines.push(`top ${top} is marked not to be used (retired)`);
  if (end?.shrink?.planned) lines.push(`base shrunk to what it uses (whole extents${end.shrink.leafRoom ? `, plus ${end.shrink.leafRoom} bytes of leaf room` : ''})`);
  return lines;
}
