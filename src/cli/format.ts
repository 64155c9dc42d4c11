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
  const needs = plan.baseFormat === 'raw' ? "top's virtual size, " : '';
  return [
    `merge plan: ${plan.top} -> ${plan.base} (${plan.baseFormat ?? 'qcow2'} ${plan.baseKind})`,
    `  base size now:   ${formatBytes(plan.baseSize)}`,
    `  base needs:      ${needs}${formatBytes(plan.neededSize)}; ${extend}`,
    `  prune (stale):   ${list(plan.bitmaps.prune)}`,
    `  add (top only):  ${list(plan.bitmaps.add.map((b) => b.name))}`,
    `  merge from top:  ${list(plan.bitmaps.merge)}`,
    ...(plan.bitmaps.skipped.length ? [`  skipped (disabled in top): ${list(plan.bitmaps.skipped)}`] : []),
    ...(plan.bitmaps.drop?.length ? [`  drop (as asked): ${list(plan.bitmaps.drop)}; the next backup must be a full one`] : []),
    ...(plan.bitmaps.inconsistent?.length ? [`  drop (in-use):   ${list(plan.bitmaps.inconsistent)}, from top and base; the next backup of each must be a full one`] : []),
    ...describeFinalize(plan),
  ].join('\n');
}

/** The end of the merge (after verify) as plan lines; none for a plain merge. */
function describeFinalize(plan: MergePlan): string[] {
  const end = plan.finalize;
  if (!end || (!end.retireTop && !end.shrink)) return [];
  const lines: string[] = [];
  if (end.child) lines.push(`  rebase child:    ${end.child.path} onto base (backing "${end.child.backingBefore}" -> "${end.child.backingAfter}")`);
  if (end.retireTop) lines.push(`  retire top:      mark ${plan.top} not to be used once the merge is verified`);
  if (end.removeTop) lines.push(`  remove top:      ${plan.top}, once nothing is backed by it`);
  if (end.shrink?.planned) {
    const room = end.shrink.leafRoom ? ` + ${formatBytes(end.shrink.leafRoom)} leaf room` : '';
    lines.push(`  shrink base:     to image-end-offset${room}, rounded up to ${formatBytes(end.shrink.extentSize)} extents; never below what it uses`);
  } else if (end.shrink) lines.push(`  shrink base:     no: ${end.shrink.reason}`);
  return lines;
}
