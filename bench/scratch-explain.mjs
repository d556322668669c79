import pg from "pg";
import { migratePostgresUrl, claimNextJobSql } from "@fleet/orchestrator";
import { PgDialect } from "drizzle-orm/pg-core";
import { queueJobs, registerWorkers, touchWorkers } from "./dist/seed-sql.js";
const server = "postgres://postgres@127.0.0.1:5499/test";
const admin = new pg.Client({ connectionString: server }); await admin.connect();
const name = `scratch_explain_${process.pid}`;
await admin.query(`create database ${name}`);
const url = server.replace(/\/[^/]+$/, `/${name}`);
try {
  await migratePostgresUrl(url);
  const c = new pg.Client({ connectionString: url }); await c.connect();
  const workers = await registerWorkers(c, "w", 10);
  await queueJobs(c, 3000); await touchWorkers(c, "w"); await c.query("analyze");
  const q = new PgDialect().sqlToQuery(claimNextJobSql({ workerId: workers[0], leaseTtlSec: 30, offlineAfterSec: 30 }));
  await c.query(`prepare claim as ${q.sql}`);
  for (const mode of ["force_custom_plan", "force_generic_plan"]) {
    await c.query(`set plan_cache_mode = ${mode}`);
    await c.query("begin");
    const { rows } = await c.query(`explain (analyze, buffers, costs off) execute claim(${q.params.map((p) => p === null ? "null" : `'${p}'`).join(",")})`);
    await c.query("rollback");
    console.log(`--- ${mode}\n` + rows.map((r) => r["QUERY PLAN"]).join("\n"));
  }
  await c.end();
} catch (e) { console.error(e); } finally {
  await admin.query(`drop database ${name} with (force)`); await admin.end();
}
