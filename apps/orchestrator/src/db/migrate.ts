import { fileURLToPath } from "node:url";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import pg from "pg";
import type { DatabaseHandle } from "./client.js";

/** Committed drizzle-kit output; the same files run on PostgreSQL and on PGlite. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** Arbitrary constant, shared by every replica: the key of the migration advisory lock. */
const MIGRATION_LOCK_KEY = 720_412_003;

/**
 * Applies pending migrations. On PostgreSQL a session advisory lock, taken on a dedicated
 * connection, serializes replicas that start together: the second waits, then finds nothing to do.
 */
export async function runMigrations(handle: DatabaseHandle): Promise<void> {
  if (handle.raw.kind === "pglite") {
    await migratePglite(drizzlePglite({ client: handle.raw.client }), { migrationsFolder: MIGRATIONS_FOLDER });
    return;
  }
  await migratePostgresUrl(handle.raw.url);
}

/** For callers without a handle (the test template database, the db:migrate script). */
export async function migratePostgresUrl(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  // Errors surface through the awaited queries; an unhandled "error" event would crash instead.
  client.on("error", () => undefined);
  await client.connect();
  try {
    // Migrations print NOTICEs (e.g. "schema drizzle already exists"); they are not problems.
    client.on("notice", () => undefined);
    await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await migratePg(drizzlePg({ client }), { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}
