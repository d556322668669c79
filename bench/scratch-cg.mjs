// deterministic PG cost per claim+complete: instructions of one backend (postgres under callgrind), (I(K2)-I(K1))/(K2-K1)
import pg from "pg";
import { readFileSync, existsSync } from "node:fs";
import { migratePostgresUrl, createDatabase, createLogger, claimNextJob, reportAttemptStatus } from "@fleet/orchestrator";
import { queueJobs, registerWorkers } from "./dist/seed-sql.js";
const server = "postgres://postgres@127.0.0.1:5498/test";
const variants = JSON.parse(process.env.VARIANTS ?? '{"base":""}');
const [K1, K2] = [Number(process.argv[2] ?? 50), Number(process.argv[3] ?? 250)];
const admin = new pg.Client({ connectionString: server }); await admin.connect();
const log = createLogger({ LOG_LEVEL: "silent", LOG_PRETTY: false });
const policy = { retryBackoffBaseSec: 10, quarantineAfterFailures: 3, quarantineSec: 600 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function instructions(pid) { const f = `/tmp/cg/cg.${pid}`; for (let i = 0; i < 200 && !existsSync(f); i++) await sleep(100); await sleep(500); const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(f, "utf8")); return Number(m[1]); }
const out = {};
for (const [v, pre] of Object.entries(variants)) {
  const name = `cg_${v}_${process.pid}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  await admin.query(`create database ${name}`);
  const url = server.replace(/\/[^/]+$/, `/${name}`);
  try {
    await migratePostgresUrl(url);
    const seed = new pg.Client({ connectionString: url }); await seed.connect();
    if (pre) await seed.query(pre);
    const [w] = await registerWorkers(seed, "cg", 1);
    await queueJobs(seed, K1 + K2 + 100); await seed.query("analyze");
    const counts = [];
    for (const K of [60, K1, K2]) {
      if (K === K1) await seed.query("analyze");
      await seed.query("update buffer_workers set last_heartbeat = now()");
      const h = await createDatabase({ DATABASE_URL: url, DATA_DIR: "x", DATABASE_POOL_MAX: 1 }, log);
      const { rows: [{ pid }] } = await h.raw.pool.query("select pg_backend_pid() as pid");
      for (let i = 0; i < K; i++) {
        const j = await claimNextJob(h.db, { workerId: w, leaseTtlSec: 3000, offlineAfterSec: 3000 });
        const o = await reportAttemptStatus(h.db, j.buffer_job_id, { status: "succeeded", output_url: "http://127.0.0.1/o.mp4", error: null, metrics: {} }, policy);
        if (o.kind !== "applied") throw new Error(JSON.stringify(o));
      }
      await h.close();
      if (K !== 60) { counts.push(await instructions(pid)); console.log("K", K, "pid", pid, counts.at(-1)); }
    }
    out[v] = `${((counts[1] - counts[0]) / (K2 - K1) / 1000).toFixed(0)}k instr/job`;
    console.log(v, out[v]);
    await seed.end();
  } finally { await admin.query(`drop database ${name} with (force)`); }
}
await admin.end();
