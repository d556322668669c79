import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ClaimJobResponse, CreateApiKeyResponse, JobStatusReportResponse, JobView, ListJobsResponse } from "@fleet/contract";
import { getTestServer, withDatabase } from "@fleet/testing/postgres";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { call, heartbeat, startTestApp } from "../test-support/harness.js";
import { MIGRATIONS_FOLDER } from "./migrate.js";

const run = promisify(execFile);
const MIGRATE_CLI = fileURLToPath(new URL("../../dist/db/migrate-cli.js", import.meta.url));

async function migrateCli(databaseUrl: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MIGRATE_CLI], {
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: databaseUrl },
      timeout: 60_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

async function admin<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe("db:migrate", () => {
  test("applies the committed migrations to an empty database, and two replicas migrating at once both succeed", async () => {
    const server = await getTestServer();
    const name = `fleet_migrate_${process.pid}_${randomBytes(4).toString("hex")}`;
    await admin(server.url, (c) => c.query(`create database ${name}`));
    const url = withDatabase(server.url, name);
    try {
      const [a, b] = await Promise.all([migrateCli(url), migrateCli(url)]);
      expect([a.code, b.code], a.output + b.output).toEqual([0, 0]);
      const tables = await admin(url, async (c) =>
        (await c.query<{ t: string }>("select tablename as t from pg_tables where schemaname = 'public' order by 1")).rows.map((r) => r.t),
      );
      expect(tables).toEqual(["api_keys", "buffer_jobs", "buffer_workers", "clients", "jobs", "webhook_deliveries", "worker_tokens"]);
      const applied = await admin(url, async (c) => (await c.query("select * from drizzle.__drizzle_migrations")).rowCount);
      const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, "meta", "_journal.json"), "utf8")) as { entries: unknown[] };
      expect(applied).toBe(journal.entries.length);
      // Running it again is a no-op.
      expect((await migrateCli(url)).code).toBe(0);
    } finally {
      await admin(server.url, (c) => c.query(`drop database if exists ${name} with (force)`));
    }
  });

  test("upgrades a database of the release before clients in place: its jobs, attempts and workers are kept and keep working", async () => {
    const server = await getTestServer();
    const name = `fleet_upgrade_${process.pid}_${randomBytes(4).toString("hex")}`;
    await admin(server.url, (c) => c.query(`create database ${name}`));
    const url = withDatabase(server.url, name);
    const previous = await mkdtemp(join(tmpdir(), "fleet-migrations-0001-"));
    try {
      await migrateUpTo(url, previous, "0001_triggers");
      const ids = await admin(url, (c) => seedPreviousRelease(c));

      const result = await migrateCli(url);
      expect(result.code, result.output).toBe(0);
      const kept = await admin(url, async (c) => (await c.query<{ n: string; t: string }>(
        `select 'jobs' as t, count(*) as n from jobs where client_id is null union all
         select 'buffer_jobs', count(*) from buffer_jobs union all
         select 'buffer_workers', count(*) from buffer_workers union all
         select 'webhook_deliveries', count(*) from webhook_deliveries order by 1`,
      )).rows.map((r) => `${r.t}=${r.n}`));
      expect(kept).toEqual(["buffer_jobs=1", "buffer_workers=1", "jobs=3", "webhook_deliveries=1"]);

      const t = await startTestApp(url, { PUBLIC_API_KEYS: "key-of-the-previous-release-01" });
      try {
        const oldKey = { key: null, headers: { "x-api-key": "key-of-the-previous-release-01" } };
        // The key that could read these jobs before still can, and so can the internal key.
        expect((await call<JobView>(t.app, "GET", `/v1/avatar/jobs/${ids.queued}`, oldKey)).json.status).toBe("queued");
        expect((await call<JobView>(t.app, "GET", `/v1/avatar/jobs/${ids.running}`)).json.worker_id).toBe("old-box");
        const listed = await call<ListJobsResponse>(t.app, "GET", "/v1/avatar/jobs", oldKey);
        expect(new Set(listed.json.jobs.map((j) => j.id))).toEqual(new Set([ids.queued, ids.running, ids.finished]));
        // A client made after the upgrade sees none of them.
        const fresh = await call<CreateApiKeyResponse>(t.app, "POST", "/internal/admin/keys", { body: { name: "new client" } });
        const freshKey = { key: null, headers: { "x-api-key": fresh.json.key } };
        expect((await call(t.app, "GET", `/v1/avatar/jobs/${ids.queued}`, freshKey)).status).toBe(404);
        expect((await call(t.app, "DELETE", `/v1/avatar/jobs/${ids.queued}`, freshKey)).status).toBe(404);
        // The attempt that was running during the upgrade finishes normally.
        expect((await heartbeat(t.app, "old-box", { status: "busy", active_jobs: [ids.attempt] })).status).toBe(200);
        const report = await call<JobStatusReportResponse>(t.app, "POST", `/internal/buffer/jobs/${ids.attempt}/status`, {
          body: { status: "succeeded", output_url: "https://93.184.216.34/old.mp4" },
        });
        expect([report.status, report.json.job_status]).toEqual([200, "succeeded"]);
        // The old key still creates jobs, now its own; the pre-upgrade idempotency key's job is unchanged.
        const created = await call<JobView>(t.app, "POST", "/v1/avatar/jobs", {
          ...oldKey,
          body: { video_url: "https://93.184.216.34/n.mp4", audio_url: "https://93.184.216.34/n.wav" },
        });
        expect(created.status).toBe(201);
        expect((await call(t.app, "GET", `/v1/avatar/jobs/${created.json.id}`, freshKey)).status).toBe(404);
        expect((await call(t.app, "DELETE", `/v1/avatar/jobs/${ids.queued}`, oldKey)).status).toBe(200);
      } finally {
        await t.close();
      }
    } finally {
      await rm(previous, { recursive: true, force: true });
      await admin(server.url, (c) => c.query(`drop database if exists ${name} with (force)`));
    }
  });

  test("upgrades a database of the release before avatar hashes (0003) in place: old jobs name none, new ones may", async () => {
    const server = await getTestServer();
    const name = `fleet_upgrade3_${process.pid}_${randomBytes(4).toString("hex")}`;
    await admin(server.url, (c) => c.query(`create database ${name}`));
    const url = withDatabase(server.url, name);
    const previous = await mkdtemp(join(tmpdir(), "fleet-migrations-0003-"));
    try {
      await migrateUpTo(url, previous, "0003_tiers");
      const ids = await admin(url, (c) => seedPreviousRelease(c));
      const result = await migrateCli(url);
      expect(result.code, result.output).toBe(0);

      const t = await startTestApp(url);
      try {
        expect((await call<JobView>(t.app, "GET", `/v1/avatar/jobs/${ids.queued}`)).json.input.video_sha256).toBeNull();
        // The attempt that was running during the upgrade finishes normally.
        expect((await heartbeat(t.app, "old-box", { status: "busy", active_jobs: [ids.attempt] })).status).toBe(200);
        const report = await call<JobStatusReportResponse>(t.app, "POST", `/internal/buffer/jobs/${ids.attempt}/status`, {
          body: { status: "succeeded", output_url: "https://93.184.216.34/old.mp4" },
        });
        expect([report.status, report.json.job_status]).toEqual([200, "succeeded"]);
        const hash = "a".repeat(64);
        const created = await call<JobView>(t.app, "POST", "/v1/avatar/jobs", {
          body: { video_url: "https://93.184.216.34/n.mp4", audio_url: "https://93.184.216.34/n.wav", video_sha256: hash, priority: 100 },
        });
        expect([created.status, created.json.input.video_sha256]).toEqual([201, hash]);
        // The database refuses a malformed hash even from a writer that skipped the API.
        await expect(admin(url, (c) => c.query(`update jobs set video_sha256 = 'ABC' where id = $1`, [ids.queued]))).rejects.toThrow(/jobs_video_sha256_check/);
        await heartbeat(t.app, "old-box", { status: "idle", active_jobs: [] });
        const claimed = await call<ClaimJobResponse>(t.app, "POST", "/internal/buffer/jobs/claim", { body: { worker_id: "old-box" } });
        expect([claimed.json.job?.musetalk_job_id, claimed.json.job?.video_sha256]).toEqual([created.json.id, hash]);
      } finally {
        await t.close();
      }
    } finally {
      await rm(previous, { recursive: true, force: true });
      await admin(server.url, (c) => c.query(`drop database if exists ${name} with (force)`));
    }
  });

  test("exits non-zero, with the reason logged, when the database is unreachable", async () => {
    const result = await migrateCli("postgres://postgres@127.0.0.1:1/nowhere");
    expect(result.code).toBe(1);
    expect(result.output).toContain("db_migrations_failed");
  });
});

/** Applies the committed migrations up to and including `lastTag`, as that release shipped them. */
async function migrateUpTo(url: string, folder: string, lastTag: string): Promise<void> {
  const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, "meta", "_journal.json"), "utf8")) as { entries: { tag: string }[] };
  const last = journal.entries.findIndex((e) => e.tag === lastTag);
  if (last < 0) throw new Error(`no migration ${lastTag}`);
  const entries = journal.entries.slice(0, last + 1);
  await mkdir(join(folder, "meta"), { recursive: true });
  await writeFile(join(folder, "meta", "_journal.json"), JSON.stringify({ ...journal, entries }));
  for (const e of entries) await copyFile(join(MIGRATIONS_FOLDER, `${e.tag}.sql`), join(folder, `${e.tag}.sql`));
  await admin(url, (client) => migrate(drizzle({ client }), { migrationsFolder: folder }));
}

/** What a running deployment of that release holds: a queued job, a running attempt, a finished job with a webhook due. */
async function seedPreviousRelease(c: pg.Client): Promise<{ queued: string; running: string; finished: string; attempt: string }> {
  await c.query(`insert into buffer_workers (worker_id, status, capacity) values ('old-box', 'busy', 1)`);
  const job = async (extra: string, values: string): Promise<string> =>
    (await c.query<{ id: string }>(
      `insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts${extra})
       values ('https://93.184.216.34/v.mp4', 'https://93.184.216.34/a.wav', '1:1', '512x512', 3${values}) returning id`,
    )).rows[0]!.id;
  const queued = await job(", idempotency_key, request_hash", ", 'order-1', 'hash-1'");
  const running = await job(", status, attempts, worker_id, started_at", ", 'running', 1, 'old-box', now()");
  const attempt = (await c.query<{ id: string }>(
    `insert into buffer_jobs (job_id, worker_id, attempt, slot, lease_expires_at) values ($1, 'old-box', 1, 0, now() + interval '1 hour')
     returning buffer_job_id as id`,
    [running],
  )).rows[0]!.id;
  await c.query(`update jobs set buffer_job_id = $1 where id = $2`, [attempt, running]);
  const finished = await job(", webhook_url", ", 'http://127.0.0.1:9/old'");
  // The trigger queues the webhook of a job that ends.
  await c.query(`update jobs set status = 'succeeded', output_url = 'https://93.184.216.34/f.mp4', finished_at = now() where id = $1`, [finished]);
  return { queued, running, finished, attempt };
}
