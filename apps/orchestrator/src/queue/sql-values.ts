import { sql, type SQL } from "drizzle-orm";

/**
 * jsonb parameter: serialized here so pg and PGlite send the same text. Always a parameter (null
 * included) so the statement text never changes, which prepared statements rely on.
 */
export function jsonb(value: unknown): SQL {
  return sql`${value === undefined || value === null ? null : JSON.stringify(value)}::jsonb`;
}

/** uuid[] parameter from validated uuids (the contract checks them), or null when absent. */
export function uuidArray(ids: readonly string[] | undefined | null): SQL {
  return sql`${ids ? `{${ids.join(",")}}` : null}::uuid[]`;
}
