// Test helper: the rows of a sizing matrix (planned against used bytes) and the table printed at the end of its suite.

/** One cell: what the plan said base needs, what base's image uses after the merge, and whether the upper bound applies. */
export interface SizingRow {
  cell: string;
  planned: number | null;
  used: number | null;
  /** False where only the ratio is reported (512-byte clusters: measure counts metadata for the whole disk). */
  bounded: boolean;
  note?: string;
}

/** planned / used, or null when either is missing. */
export function ratioOf(row: SizingRow): number | null {
  return row.planned !== null && row.used !== null && row.used > 0 ? row.planned / row.used : null;
}

function extremes(rows: readonly SizingRow[], label: string): string {
  const measured = rows.filter((r) => ratioOf(r) !== null).sort((a, b) => (ratioOf(a) ?? 0) - (ratioOf(b) ?? 0));
  const lowest = measured[0];
  const highest = measured[measured.length - 1];
  if (!lowest || !highest) return `${label}: no cell measured`;
  return `${label}: lowest planned/used ${ratioOf(lowest)?.toFixed(3)} (${lowest.cell}), highest ${ratioOf(highest)?.toFixed(3)} (${highest.cell})`;
}

/** The rows as an aligned text table in run order, then the lowest and highest ratios (all cells, and bounded cells only). */
export function sizingTable(title: string, rows: readonly SizingRow[]): string {
  const header = ['cell', 'planned', 'used', 'planned/used', 'note'];
  const cells = rows.map((r) => {
    const ratio = ratioOf(r);
    return [r.cell, String(r.planned ?? '-'), String(r.used ?? '-'), ratio === null ? '-' : ratio.toFixed(3), `${r.bounded ? '' : 'ratio only; '}${r.note ?? ''}`];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string => c.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [
    `${title}:`,
    line(header),
    ...cells.map(line),
    extremes(rows, 'all cells'),
    extremes(
      rows.filter((r) => r.bounded),
      'clusters of 4 KiB and more',
    ),
  ].join('\n');
}
