import { sql, type SQL } from "drizzle-orm";

/** jsonb parameter: serialized here so pg and PGlite send the same text. */
export function jsonb(value: unknown): SQL {
  return value === undefined || value === null ? sql`null::jsonb` : sql`${JSON.stringify(value)}::jsonb`;
}

/** uuid[] parameter from validated uuids (the contract checks them), or SQL null when absent. */
export function uuidArray(ids: readonly string[] | undefined | null): SQL {
  return ids ? sql`${`{${ids.join(",")}}`}::uuid[]` : sql`null::uuid[]`;
}
