/** PostgreSQL's codes for the errors callers handle. */
export const UNIQUE_VIOLATION = "23505";
export const DEADLOCK_DETECTED = "40P01";

/** The errors along `err`'s cause chain (pg's own, then what drizzle or a pool wrapped it in), outermost first. */
export function causeChain(err: unknown): Error[] {
  const chain: Error[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) chain.push(e);
  return chain;
}

/** The SQLSTATE of a database error, raised by pg itself or wrapped by drizzle (as `cause`). */
export function sqlState(err: unknown): string | undefined {
  for (const e of causeChain(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
