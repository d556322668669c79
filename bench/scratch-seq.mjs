// sequential claim+complete on one connection; PG backend CPU per job, variants interleaved
import pg from "pg";
import { readFileSync } from "node:fs";
import { migratePostgresUrl, createDatabase, createLogger, claimNextJob, reportAttemptStatus } from "@fleet/orchestrator";
import { queueJobs, registerWorkers, touchWorkers } from "./dist/seed-sql.js";
const server = "postgres://postgres@127.0.0.1:5499/test";
const variants = JSON.parse(process.env.VARIANTS ?? '{"base":""}');
const N = Number(process.argv[2] ?? 3000), reps = Number(process.argv[3] ?? 3);
const cpu = (pid) => { const st = readFileSync(`/proc/${pid}/stat`, "utf8"); const f = st.slice(st.lastIndexOf(")") + 2).split(" "); return (Number(f[11]) + Number(f[12])) / 100; };
const admin = new pg.Client({ connectionString: server }); await admin.connect();
const log = createLogger({ LOG_LEVEL: "silent", LOG_PRETTY: false });
const res = {};
const policy = { retryBackoffBaseSec: 10, quarantineAfterFailures: 3, quarantineSec: 600 };
for (let r = 0; r < reps; r++) for (const [v, pre] of Object.entries(variants)) {
  const name = `seq_${v}_${r}_${process.pid}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  await admin.query(`create database ${name}`);
  const url = server.replace(/\/[^/]+$/, `/${name}`);
  try {
    await migratePostgresUrl(url);
    const seed = new pg.Client({ connectionString: url }); await seed.connect();
    if (pre) await seed.query(pre);
    const [w] = await registerWorkers(seed, "seq", 1);
    await queueJobs(seed, N + 200); await seed.query("analyze");
    const h = await createDatabase({ DATABASE_URL: url, DATA_DIR: "x", DATABASE_POOL_MAX: 1 }, log);
    const once = async () => { const j = await claimNextJob(h.db, { workerId: w, leaseTtlSec: 30, offlineAfterSec: 30 }); const o = await reportAttemptStatus(h.db, j.buffer_job_id, { status: "succeeded", output_url: "http://127.0.0.1/o.mp4", error: null, metrics: {} }, policy); if (o.kind !== "applied") throw new Error(JSON.stringify(o)); };
    for (let i = 0; i < 200; i++) await once();
    await touchWorkers(seed, "seq");
    const { rows: [{ pid }] } = await seed.query("select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [name]);
    const c0 = cpu(pid), t0 = performance.now();
    for (let i = 0; i < N; i++) { if (i % 1000 === 0) await touchWorkers(seed, "seq"); await once(); }
    const c1 = cpu(pid), t1 = performance.now();
    (res[v] ??= []).push(((c1 - c0) * 1000 / N).toFixed(3) + `ms (${((t1 - t0) / N).toFixed(2)}ms wall)`);
    await h.close(); await seed.end();
  } finally { await admin.query(`drop database ${name} with (force)`); }
}
console.log(res); await admin.end();
