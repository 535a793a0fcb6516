// Order statistics for the benchmarks (scripts/bench.ts, scripts/bench/).

/** The value at fraction `p` of the sorted samples (index floor(n × p), clamped): p99 of 100 samples is the largest. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

/** The upper median: the middle value of an odd count, the higher of the two middle ones otherwise. */
export const median = (xs: readonly number[]): number => percentile(xs, 0.5);
