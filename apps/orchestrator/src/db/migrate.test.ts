import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { getTestServer, withDatabase } from "@fleet/testing/postgres";
import pg from "pg";
import { describe, expect, test } from "vitest";

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
      expect(tables).toEqual(["buffer_jobs", "buffer_workers", "jobs", "webhook_deliveries"]);
      const applied = await admin(url, async (c) => (await c.query("select * from drizzle.__drizzle_migrations")).rowCount);
      expect(applied).toBe(3);
      // Running it again is a no-op.
      expect((await migrateCli(url)).code).toBe(0);
    } finally {
      await admin(server.url, (c) => c.query(`drop database if exists ${name} with (force)`));
    }
  });

  test("exits non-zero, with the reason logged, when the database is unreachable", async () => {
    const result = await migrateCli("postgres://postgres@127.0.0.1:1/nowhere");
    expect(result.code).toBe(1);
    expect(result.output).toContain("db_migrations_failed");
  });
});
