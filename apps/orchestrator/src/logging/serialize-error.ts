import pino from "pino";

/** Drizzle's failed-query message is "Failed query: <sql>\nparams: <values>"; keep the SQL, drop the values. */
const PARAMS_IN_TEXT = /\nparams: [\s\S]*?(?=\n\s+at |\ncaused by: |$)/g;
/** Shorter values (numbers, statuses) say nothing secret and would mangle the text if replaced. */
const MIN_SECRET_LENGTH = 6;

/**
 * pino's `err` serializer, minus query parameter values anywhere in the error: its own `params`,
 * the "params:" line of its message and stack, and every echo of a value in the text of the
 * cause chain (PostgreSQL quotes the offending input: `invalid input syntax … "value"`).
 * Parameters hold what clients sent (URLs with presigned credentials, metadata) and key hashes;
 * a 5xx log line needs the statement and the database's error, never the values.
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const values = paramValues(err);
  return scrub(pino.stdSerializers.err(err), values, 0);
}

function paramValues(err: Error): string[] {
  const values = new Set<string>();
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const params = (e as { params?: unknown }).params;
    if (!Array.isArray(params)) continue;
    for (const p of params) {
      const text = typeof p === "string" ? p : p !== null && typeof p === "object" ? JSON.stringify(p) : String(p);
      if (text.length >= MIN_SECRET_LENGTH) values.add(text);
    }
  }
  // Longest first, so a value containing another is removed whole.
  return [...values].sort((a, b) => b.length - a.length);
}

function scrubText(text: string, values: string[]): string {
  let out = text.replace(PARAMS_IN_TEXT, "\nparams: [redacted]");
  for (const value of values) out = out.replaceAll(value, "[redacted]");
  return out;
}

function scrub(value: unknown, values: string[], depth: number): unknown {
  if (typeof value === "string") return scrubText(value, values);
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => scrub(item, values, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === "params") out[key] = "[redacted]";
    else if (key === "cause" && item instanceof Error) out[key] = scrub(pino.stdSerializers.err(item), values, depth + 1);
    else out[key] = scrub(item, values, depth + 1);
  }
  return out;
}
