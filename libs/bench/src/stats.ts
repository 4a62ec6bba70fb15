// Percentiles and number formatting for the report.

/** Distribution of a sample. */
export interface Summary {
  n: number
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
}

/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number)

/** p50/p90/p99/max/mean of the values (an array, or a typed array of millions without a copy into one). */
export const summarize = (values: ArrayLike<number>): Summary => {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (let i = 0; i < sorted.length; i++) sum += sorted[i] as number
  return {
    n: sorted.length,
    mean: sorted.length === 0 ? NaN : sum / sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? NaN : (sorted[sorted.length - 1] as number),
  }
}

/** 12,345 */
export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-')

/** Milliseconds with two decimals below 10 ms, one above. */
export const ms = (n: number): string => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : '-')

/** Seconds with two decimals. */
export const sec = (n: number): string => `${n.toFixed(2)} s`
