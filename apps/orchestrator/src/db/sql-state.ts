/** PostgreSQL's codes for the errors callers handle. */
export const UNIQUE_VIOLATION = "23505";
export const DEADLOCK_DETECTED = "40P01";

/** The SQLSTATE of a database error, raised by pg itself or wrapped by drizzle (as `cause`). */
export function sqlState(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === "string" ? code : undefined;
}
