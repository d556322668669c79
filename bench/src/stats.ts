/** Percentiles of one sample set, in the unit the samples were taken in (milliseconds here). */
export interface Summary {
  count: number;
  mean: number;
  /** p50 is the median: the two names are one number, reported once. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  min: number;
}

/**
 * Nearest-rank percentiles (no interpolation): p99 of 1,000 samples is the 990th smallest, a value
 * that was really observed. An empty set summarizes to NaN everywhere rather than to zeros that
 * would read as "instant".
 */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, min: NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    mean: sum / sorted.length,
    p50: rank(50),
    p90: rank(90),
    p99: rank(99),
    max: sorted[sorted.length - 1] ?? NaN,
    min: sorted[0] ?? NaN,
  };
}

/** Milliseconds with precision that suits their size: 0.42, 4.2, 42, 4,200. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  if (ms >= 1000) return Math.round(ms).toLocaleString("en-US");
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

export function formatRate(perSec: number): string {
  if (!Number.isFinite(perSec)) return "–";
  return Math.round(perSec).toLocaleString("en-US");
}

/** The columns every latency table shares, so tables read the same across sections. */
export const LATENCY_COLUMNS = ["n", "mean", "p50 (median)", "p90", "p99", "max"] as const;

export function latencyCells(s: Summary): string[] {
  return [s.count.toLocaleString("en-US"), formatMs(s.mean), formatMs(s.p50), formatMs(s.p90), formatMs(s.p99), formatMs(s.max)];
}
