/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries are
 * never faster than half the base (no hot loop) and a fleet that failed together does not retry
 * together.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 20));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** ±5 % around `ms`, so heartbeats of many workers started together drift apart. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (0.95 + random() * 0.1));
}
