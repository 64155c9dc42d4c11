// Human-readable text for plans and results on stdout.
import type { MergePlan } from '../merge/plan.js';

/** Bytes as "134217728 (128.0 MiB)". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${bytes} (${value.toFixed(1)} ${units[unit]})`;
}

function list(names: readonly string[]): string {
  return names.length > 0 ? names.join(', ') : '(none)';
}

/** The plan as a few lines an operator can read before saying yes. */
export function describePlan(plan: MergePlan): string {
  const extend =
    plan.extendTo !== null
      ? `extend to ${formatBytes(plan.extendTo)}`
      : plan.baseKind === 'file'
        ? 'no extension (a file grows by itself)'
        : 'no extension needed';
  return [
    `merge plan: ${plan.top} -> ${plan.base} (${plan.baseKind})`,
    `  base size now:   ${formatBytes(plan.baseSize)}`,
    `  base needs:      ${formatBytes(plan.neededSize)}; ${extend}`,
    `  prune (stale):   ${list(plan.bitmaps.prune)}`,
    `  add (top only):  ${list(plan.bitmaps.add.map((b) => b.name))}`,
    `  merge from top:  ${list(plan.bitmaps.merge)}`,
    ...(plan.bitmaps.skipped.length ? [`  skipped (disabled in top): ${list(plan.bitmaps.skipped)}`] : []),
  ].join('\n');
}
