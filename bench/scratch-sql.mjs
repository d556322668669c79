// scratch: one system's SQL drain with pg_stat_statements and /proc CPU of backends
import pg from "pg";
import { fleetSql, graphileSql, pgBossSql } from "./dist/sql-claimers.js";
import { readFileSync, readdirSync } from "node:fs";
const pm = Number(readFileSync("/tmp/pga/data/postmaster.pid", "utf8").split("\n")[0]);
function clusterCpu() { let t = 0; for (const d of readdirSync("/proc")) { if (!/^\d+$/.test(d)) continue; try { const st = readFileSync(`/proc/${d}/stat`, "utf8"); const f = st.slice(st.lastIndexOf(")") + 2).split(" "); const pid = Number(d); if (pid === pm) t += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); else if (Number(f[1]) === pm) t += Number(f[11]) + Number(f[12]); } catch {} } return t / 100; }
import { migratePostgresUrl } from "@fleet/orchestrator";
const server = process.env.URL ?? "postgres://postgres@127.0.0.1:5499/test";
const which = process.argv[2] ?? "fleet";
const jobs = Number(process.argv[3] ?? 3000), conc = Number(process.argv[4] ?? 10), rounds = Number(process.argv[5] ?? 2);
const admin = new pg.Client({ connectionString: server }); await admin.connect();
const name = `scratch_${which}_${process.pid}`;
await admin.query(`create database ${name}`);
const url = server.replace(/\/[^/]+$/, `/${name}`);
try {
  if (which === "fleet") { await migratePostgresUrl(url); if (process.env.PRE) { const c = new pg.Client({ connectionString: url }); await c.connect(); await c.query(process.env.PRE); await c.end(); } }
  const sys = which === "fleet" ? await fleetSql(url, conc) : which === "graphile" ? await graphileSql(url, conc, "x") : await pgBossSql(url, conc, "x");
  await sys.drain(500, conc); // warm-up
  await admin.query("select pg_stat_statements_reset()");
  const c0 = clusterCpu(); const s0 = process.cpuUsage();
  let total = 0, wall = 0;
  for (let r = 0; r < rounds; r++) { const d = await sys.drain(jobs, conc); total += d.jobs; wall += d.wallMs; }
  const cpu = { postgresSec: clusterCpu() - c0, selfSec: (() => { const u = process.cpuUsage(s0); return (u.user + u.system) / 1e6; })() };
  console.log(`${which}: ${(total / wall * 1000).toFixed(0)} jobs/s; pg CPU/job ${(cpu.postgresSec * 1000 / total).toFixed(3)} ms; node CPU/job ${(cpu.selfSec*1000/total).toFixed(3)} ms`);
  const { rows } = await admin.query(`select calls, round(total_exec_time::numeric/calls,3) exec_ms, round(total_plan_time::numeric/greatest(calls,1),3) plan_ms, plans, wal_records/greatest(calls,1) wal_rec, wal_bytes/greatest(calls,1) wal_b, shared_blks_hit/greatest(calls,1) hit, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) q from pg_stat_statements where calls >= ${total / 2} order by total_exec_time desc limit 12`);
  console.table(rows);
  await sys.close();
} catch (e) { console.error("FAILED", e); } finally {
  await admin.query(`drop database ${name} with (force)`); await admin.end();
}
