// The plan as `volmerge merge --json` shows it (schemas/merge-result.schema.json).
import type { MergePlan } from '../merge/plan.js';

/** The end of a merge as the CLI's --json contract shows it. */
export interface FinalizeSummary {
  child: string | null;
  retireTop: boolean;
  removeTop: boolean;
  shrink: { planned: boolean; leafRoom?: number; reason?: string } | null;
}

/** The plan as the CLI's --json contract shows it. */
export interface PlanSummary {
  baseFormat: 'qcow2' | 'raw';
  neededSize: number;
  baseSize: number;
  extendTo: number | null;
  prune: string[];
  add: string[];
  merge: string[];
  drop: string[];
  /** Bitmaps dropped as inconsistent (--drop-inconsistent); absent when none. */
  inconsistent?: string[];
  finalize?: FinalizeSummary;
}

/** The plan as the CLI's --json contract shows it (finalize only for plans that have one). */
export function planSummary(plan: MergePlan): PlanSummary {
  const end = plan.finalize;
  return {
    baseFormat: plan.baseFormat ?? 'qcow2',
    neededSize: plan.neededSize,
    baseSize: plan.baseSize,
    extendTo: plan.extendTo,
    prune: [...plan.bitmaps.prune],
    add: plan.bitmaps.add.map((b) => b.name),
    merge: [...plan.bitmaps.merge],
    drop: [...(plan.bitmaps.drop ?? [])],
    ...(plan.bitmaps.inconsistent?.length ? { inconsistent: [...plan.bitmaps.inconsistent] } : {}),
    ...(end
      ? {
          finalize: {
            child: end.child?.path ?? null,
            retireTop: end.retireTop,
            removeTop: end.removeTop,
            shrink: end.shrink === null ? null : end.shrink.planned ? { planned: true, leafRoom: end.shrink.leafRoom } : { planned: false, reason: end.shrink.reason },
          },
        }
      : {}),
  };
}
