const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
// eslint-disable-next-line no-control-regex -- NUL is exactly what is being removed
const NUL = /\u0000/g;

/**
 * Strings PostgreSQL cannot store (NUL; unpaired surrogates in jsonb) make the orchestrator
 * answer 500 for ever, and an outbox would retry such a report for ever. Error texts come from
 * stderr and foreign HTTP bodies, so every report is cleaned before it is written.
 */
export function wellFormed<T>(value: T): T {
  if (typeof value === "string") return value.replace(NUL, "").replace(LONE_SURROGATE, "\uFFFD") as T;
  if (Array.isArray(value)) return value.map((v: unknown) => wellFormed(v)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [wellFormed(k), wellFormed(v)])) as T;
  }
  return value;
}
