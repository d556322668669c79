// Longer than 250 lines on purpose: the one fixture every orchestrator test shares (app, database, requests), kept in one place so none drifts.
import { Writable } from "node:stream";
import {
  ErrorBody,
  routeRequest,
  type ClaimedJob,
  type JobView,
  type RouteCredentials,
  type RouteInput,
  type RouteName,
  type RouteResult,
} from "@fleet/contract";
import { staticResolver } from "@fleet/egress";
import { createDatabaseTest } from "@fleet/testing/postgres";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { buildApp, type App } from "../app.js";
import { loadConfig, type Config } from "../config.js";
import { createDatabase, queryRows, type DatabaseHandle } from "../db/client.js";
import { migratePostgresUrl } from "../db/migrate.js";
import type { ResolveHost } from "../http/url-guard.js";
import { createLogger } from "../logging/create-logger.js";
import { Counters } from "../metrics.js";

export const INTERNAL_KEY = "internal-test-key-0001";
export const PUBLIC_KEY = "public-test-key-0001";

/** A vitest `test` whose `databaseUrl` is a fresh clone of the migrated template. */
export const dbTest = createDatabaseTest(migratePostgresUrl);

export function testConfig(databaseUrl: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: databaseUrl,
    INTERNAL_API_KEY: INTERNAL_KEY,
    PUBLIC_API_KEYS: `${PUBLIC_KEY},second-public-key`,
    LOG_LEVEL: "debug",
    ...overrides,
  });
}

export interface TestApp {
  app: App;
  db: DatabaseHandle;
  config: Config;
  counters: Counters;
  log: Logger;
  /** Every log line the app wrote (pino JSON, after redaction). */
  logs: string[];
  close(): Promise<void>;
}

/** buildApp over a real database with captured logs; requests go through `app.inject`. */
export async function startTestApp(
  databaseUrl: string,
  overrides: Record<string, string> = {},
  options: { resolveHost?: ResolveHost; beforeReady?: (app: App) => void; wrapDatabase?: (db: DatabaseHandle) => DatabaseHandle } = {},
): Promise<TestApp> {
  const config = testConfig(databaseUrl, overrides);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done: () => void) {
      logs.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  const log = createLogger(config, sink);
  const opened = await createDatabase(config, log);
  const db = options.wrapDatabase ? options.wrapDatabase(opened) : opened;
  const counters = new Counters();
  // Tests never ask real DNS about a name: names resolve from a table a test passes (none by default).
  const resolveHost = options.resolveHost ?? staticResolver({});
  const app = await buildApp({ config, db, log, counters, resolveHost });
  options.beforeReady?.(app);
  await app.ready();
  let closed: Promise<void> | undefined;
  return {
    app,
    db,
    config,
    counters,
    log,
    logs,
    // Idempotent: a test may close an app itself (a restart) and the fixture closes it again.
    close() {
      closed ??= (async () => {
        await app.close();
        await opened.close();
      })();
      return closed;
    },
  };
}

export type StartApp = (
  overrides?: Record<string, string>,
  options?: Parameters<typeof startTestApp>[2],
) => Promise<TestApp>;

/**
 * A `dbTest` with test apps on the test's database, closed by the fixture after the test:
 * `t` is one app with the test env; `startApp(env, options)` starts others (custom env, a
 * restart, a second replica).
 *
 *   appTest("claims once", async ({ t }) => { await claim(t.app, "gpu-1"); });
 *   appTest("reads METRICS_TOKEN", async ({ startApp }) => { const t = await startApp({ METRICS_TOKEN: "x" }); ... });
 */
export const appTest = dbTest
  .extend("startApp", ({ databaseUrl }, { onCleanup }): StartApp => {
    const started: TestApp[] = [];
    onCleanup(async () => {
      for (const t of started.reverse()) await t.close();
    });
    return async (overrides = {}, options = {}) => {
      const t = await startTestApp(databaseUrl, overrides, options);
      started.push(t);
      return t;
    };
  })
  .extend("t", ({ startApp }) => startApp());

type Method = "GET" | "POST" | "PUT" | "DELETE";

export interface CallResult<T> {
  status: number;
  /** The body as the success type; read `error` for 4xx/5xx. */
  json: T;
  error: ErrorBody["error"] | undefined;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

/** One request through `inject` with the internal key (or `key: null` for none). */
export async function call<T = unknown>(
  app: App,
  method: Method,
  url: string,
  options: { body?: unknown; key?: string | null; headers?: Record<string, string> } = {},
): Promise<CallResult<T>> {
  const key = options.key === undefined ? INTERNAL_KEY : options.key;
  const response = await app.inject({
    method,
    url,
    headers: { ...(key ? { "x-internal-api-key": key } : {}), ...options.headers },
    ...(options.body !== undefined ? { payload: options.body as Record<string, unknown> } : {}),
  });
  let json: unknown;
  try {
    json = response.json();
  } catch {
    json = undefined;
  }
  const error = response.statusCode >= 400 ? ErrorBody.safeParse(json).data?.error : undefined;
  return { status: response.statusCode, json: json as T, error, headers: response.headers, body: response.body };
}

/**
 * One route of the contract's table through `inject`, its path and auth built by the contract's
 * request layer (as the worker and the CLI build theirs). The body is not checked here, so
 * bad-input tests can send anything; `credentials` defaults to the internal key.
 */
async function callRoute<N extends RouteName>(
  app: App,
  name: N,
  input: RouteInput = {},
  credentials: RouteCredentials = { internalApiKey: INTERNAL_KEY },
): Promise<CallResult<RouteResult<N>>> {
  const request = routeRequest(name, input, credentials);
  return call<RouteResult<N>>(app, request.method, request.path, { key: null, headers: request.headers, body: input.body });
}

/** A Fleet worker's heartbeat (it always sends `version`); `body` overrides or adds fields. */
export async function heartbeat(app: App, workerId: string, body: Record<string, unknown> = {}) {
  return callRoute(app, "heartbeat", {
    params: { worker_id: workerId },
    body: { status: "idle", gpu_class: "RTX 4090", capacity: 1, error: null, version: "0.1.0-test", ...body },
  });
}

/** The original buffer loop's heartbeat, exactly its four fields (no active_jobs, no version). */
export async function originalHeartbeat(app: App, workerId: string, status: "idle" | "busy" = "idle") {
  return callRoute(app, "heartbeat", {
    params: { worker_id: workerId },
    body: { status, gpu_class: "RTX-3090-Local-Buffer-1", capacity: 1, error: null },
  });
}

/** The original main-tier worker's heartbeat (`unified_worker.py`). */
export async function mainHeartbeat(
  app: App,
  workerId: string,
  body: { status?: "idle" | "busy"; current_job_id?: string | null; worker_type?: string } = {},
) {
  return callRoute(app, "mainHeartbeat", {
    params: { worker_id: workerId },
    body: {
      status: "idle",
      current_job_id: null,
      provider: "salad",
      gpu_class: "RTX 4090 (24 GB)",
      worker_type: "main",
      system_info: { cpu_cores_logical: 8, ram_total_gb: 31.3, download_speed_mbps: null },
      ...body,
    },
  });
}

export async function createJobViaApi(app: App, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return callRoute(
    app,
    "createJob",
    {
      headers,
      body: {
        video_url: "https://93.184.216.34/avatar.mp4",
        audio_url: "https://93.184.216.34/voice.wav",
        aspect_ratio: "9:16",
        resolution: "720p",
        ...body,
      },
    },
    { apiKey: PUBLIC_KEY },
  );
}

/** Creates a job and returns its id (fails the test if creation fails). */
export async function createJobId(app: App, body: Record<string, unknown> = {}): Promise<string> {
  const res = await createJobViaApi(app, body);
  if (res.status !== 201) throw new Error(`create failed: ${res.body}`);
  return res.json.id;
}

export async function claim(app: App, workerId: string, waitMs = 0) {
  return callRoute(app, "claimJob", { body: { worker_id: workerId, wait_ms: waitMs } });
}

/** Claims and insists on getting a job. */
export async function claimJob(app: App, workerId: string): Promise<ClaimedJob> {
  const res = await claim(app, workerId);
  if (!res.json.job) throw new Error(`expected a job for ${workerId}, got ${res.body}`);
  return res.json.job;
}

export async function reportStatus(app: App, bufferJobId: string, body: Record<string, unknown>) {
  return callRoute(app, "reportJobStatus", { params: { buffer_job_id: bufferJobId }, body });
}

export async function getJobView(app: App, id: string): Promise<JobView> {
  return (await callRoute(app, "getJob", { params: { id } })).json;
}

/** Every row of the tables the API writes, for "nothing changed" assertions. */
export async function snapshotTables(db: DatabaseHandle): Promise<string> {
  const tables = ["buffer_workers", "jobs", "buffer_jobs", "webhook_deliveries"];
  const parts: string[] = [];
  for (const table of tables) {
    const rows = await queryRows(db.db, sql.raw(`select to_jsonb(t) as row from ${table} t order by 1::text`));
    parts.push(`${table}: ${JSON.stringify(rows.map((r) => JSON.stringify(r)).sort())}`);
  }
  return parts.join("\n");
}

/** Moves time for the database's view: makes a worker's last heartbeat `seconds` older. */
export async function ageHeartbeat(db: DatabaseHandle, workerId: string, seconds: number): Promise<void> {
  await db.db.execute(
    sql`update buffer_workers set last_heartbeat = last_heartbeat - make_interval(secs => ${seconds}) where worker_id = ${workerId}`,
  );
}

/** Makes an attempt's lease expire now, as if its holder had been silent for LEASE_TTL_SEC. */
export async function expireLease(db: DatabaseHandle, bufferJobId: string): Promise<void> {
  await db.db.execute(
    sql`update buffer_jobs set lease_expires_at = now() - interval '1 second' where buffer_job_id = ${bufferJobId}`,
  );
}
