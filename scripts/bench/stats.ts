// Benchmark helper: medians, percentiles and rounding for the figures.

/** The value below which a share q (0..1) of the samples lie (nearest rank); NaN for no samples. */
export function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** The median (the mean of the two middle values for an even count); NaN for no samples. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Rounds to a number of decimals (figures in the JSON stay readable). */
export function round(value: number, decimals = 1): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

/** A sample summary: every value, the median, the smallest and the largest. */
export interface Summary {
  samples: number[];
  median: number;
  min: number;
  max: number;
}

/** Summarises samples in milliseconds (or any unit), rounded to 0.1. */
export function summarize(samples: readonly number[]): Summary {
  return {
    samples: samples.map((s) => round(s)),
    median: round(median(samples)),
    min: round(Math.min(...samples)),
    max: round(Math.max(...samples)),
  };
}
