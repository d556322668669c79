import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import type { SQL } from "drizzle-orm";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { PgDialect, type PgDatabase, type PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import pg from "pg";
import type { Logger } from "pino";
import type { DatabaseConfig } from "../config.js";
import { PgListener } from "./pg-listener.js";
import * as schema from "./schema/index.js";

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;
/** Anything that can run a statement: the database or an open transaction. */
export type Executor = Pick<Database, "execute">;

export interface DatabaseHandle {
  db: Database;
  kind: "postgres" | "pglite";
  /** Calls onNotify for every NOTIFY on channel (and once after a reconnect). Returns unlisten. */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  /** Rejects when the database does not answer within timeoutMs. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
  /** The pg pool or PGlite instance, for migrations that need a dedicated session. */
  raw: { kind: "postgres"; pool: pg.Pool; url: string } | { kind: "pglite"; client: PGlite };
}

/** Both drivers return `{ rows }`; this hides which one answered. */
export async function queryRows<T>(executor: Executor, query: SQL): Promise<T[]> {
  const result: unknown = await executor.execute(query);
  return (result as { rows: T[] }).rows;
}

const dialect = new PgDialect();

/**
 * For the hot statements (heartbeat, claim): on PostgreSQL, a named prepared statement, so each
 * pooled connection plans it once instead of on every call (planning the heartbeat's CTEs costs
 * about three times its execution). `name` must always come with the same SQL text. Inside a
 * transaction, or on PGlite, it is an ordinary query.
 */
export async function queryPrepared<T>(executor: Executor, name: string, query: SQL): Promise<T[]> {
  const client = (executor as { $client?: unknown }).$client;
  if (client instanceof pg.Pool) {
    const { sql: text, params } = dialect.sqlToQuery(query);
    const result = await client.query({ name, text, values: params });
    return result.rows as T[];
  }
  return queryRows<T>(executor, query);
}

export async function createDatabase(
  config: DatabaseConfig,
  log: Logger,
): Promise<DatabaseHandle> {
  return config.DATABASE_URL
    ? createPostgres(config.DATABASE_URL, config.DATABASE_POOL_MAX, log)
    : createPglite(config.DATA_DIR, log);
}

function createPostgres(url: string, poolMax: number, log: Logger): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    // Fail fast while the database is down instead of queueing requests behind dead sockets.
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits here; pg-pool discards it. Unhandled, it would
  // crash the process on every database restart.
  pool.on("error", (err) => log.warn({ err }, "db_pool_client_error"));
  // A checked-out client (inside a transaction) whose backend is terminated emits "error" on
  // itself, not on the pool; without a listener that event would crash the process. The query
  // in flight still rejects, and pg-pool drops the broken client when it is released.
  pool.on("connect", (client) => {
    client.on("error", (err) => log.warn({ err }, "db_client_connection_lost"));
  });
  const listener = new PgListener(url, log);
  const db = drizzlePg({ client: pool, schema }) as unknown as Database;
  return {
    db,
    kind: "postgres",
    raw: { kind: "postgres", pool, url },
    listen: (channel, onNotify) => listener.listen(channel, onNotify),
    ping: (timeoutMs = 2000) => withTimeout(pool.query("select 1"), timeoutMs),
    async close() {
      await listener.close();
      await pool.end();
    },
  };
}

async function createPglite(dataDir: string, log: Logger): Promise<DatabaseHandle> {
  await mkdir(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir);
  log.info({ dataDir }, "db_embedded_pglite");
  const db = drizzlePglite({ client, schema }) as unknown as Database;
  return {
    db,
    kind: "pglite",
    raw: { kind: "pglite", client },
    async listen(channel, onNotify) {
      const unlisten = await client.listen(channel, () => onNotify());
      return () => unlisten();
    },
    ping: (timeoutMs = 2000) => withTimeout(client.query("select 1"), timeoutMs),
    close: () => client.close(),
  };
}

async function withTimeout(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
