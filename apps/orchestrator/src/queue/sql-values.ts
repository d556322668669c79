import { sql, type SQL } from "drizzle-orm";

/**
 * jsonb parameter: serialized here so pg and PGlite send the same text. Always a parameter (null
 * included) so the statement text never changes, which prepared statements rely on.
 */
export function jsonb(value: unknown): SQL {
  return sql`${value === undefined || value === null ? null : JSON.stringify(value)}::jsonb`;
}
