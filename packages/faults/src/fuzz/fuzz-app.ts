import { Writable } from "node:stream";
import { staticResolver } from "@fleet/egress";
import { buildApp, createDatabase, createLogger, loadConfig, type App, type DatabaseHandle } from "@fleet/orchestrator";
import pg from "pg";

export const FUZZ_INTERNAL_KEY = "fuzz-internal-key-0001";
export const FUZZ_PUBLIC_KEY = "fuzz-public-key-0001";

/**
 * A fixed DNS table instead of the machine's resolver: no name ever leaves the machine, and the
 * guard's private resolution paths need names that resolve to private addresses. Names not
 * listed do not resolve, which the guard lets through by design (every connection is re-checked).
 */
const FUZZ_DNS: Readonly<Record<string, string[]>> = {
  "media.fuzz.internal": ["93.184.216.34"],
  "cdn.fuzz.internal": ["2606:2800:220:1:248:1893:25c8:1946"],
  "internal.fuzz.internal": ["10.1.2.3"],
  "metadata.fuzz.internal": ["169.254.169.254"],
  "rebind.fuzz.internal": ["93.184.216.34", "127.0.0.1"],
  "v6-loopback.fuzz.internal": ["::1"],
};

const resolveFromTable = staticResolver(FUZZ_DNS);

export interface FuzzApp {
  app: App;
  db: DatabaseHandle;
  /** Error-level log lines (a 500 is logged as `request_failed`). */
  errorLogs: string[];
  /** Row counts and checksums of the tables a request may write. */
  snapshot(): Promise<string>;
  close(): Promise<void>;
}

/** The orchestrator's real app (buildApp) over a real PostgreSQL database, driven through `inject`. */
export async function startFuzzApp(databaseUrl: string): Promise<FuzzApp> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    INTERNAL_API_KEY: FUZZ_INTERNAL_KEY,
    PUBLIC_API_KEYS: FUZZ_PUBLIC_KEY,
    ALLOW_PRIVATE_NETWORK_URLS: "false",
    DATABASE_POOL_MAX: "4",
    LOG_LEVEL: "warn",
  });
  const errorLogs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line.includes('"level":"error"') || line.includes('"level":"fatal"')) errorLogs.push(line);
      done();
    },
  });
  const log = createLogger(config, sink);
  const db = await createDatabase(config, log);
  const app = await buildApp({ config, db, log, resolveHost: resolveFromTable });
  await app.ready();
  // Its own connection: the snapshot must not queue behind the app's pool.
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();

  return {
    app,
    db,
    errorLogs,
    async snapshot() {
      const { rows } = await client.query<{ t: string; n: string; sum: string | null }>(
        `select 'buffer_workers' as t, count(*) as n, md5(string_agg(x::text, '|' order by x::text)) as sum from buffer_workers x
         union all
         select 'jobs', count(*), md5(string_agg(x::text, '|' order by x::text)) from jobs x
         union all
         select 'buffer_jobs', count(*), md5(string_agg(x::text, '|' order by x::text)) from buffer_jobs x`,
      );
      return rows.map((r) => `${r.t}=${r.n}:${r.sum ?? "-"}`).join(" ");
    },
    async close() {
      await client.end();
      await app.close();
      await db.close();
    },
  };
}
