import { table, text, type Benchmark, type BenchContext, type Block } from "./benchmark.js";
import { httpRoundTrips, type HttpOptions, type HttpRun } from "./claim-http.js";
import { errorBlocks, profileBlock } from "./diagnostics.js";
import pg from "pg";
import { startBackendCpuSampler } from "./proc-stats.js";
import { fleetSql, graphileSql, pgBossSql, type DrainResult, type SqlSystem } from "./sql-claimers.js";
import { LATENCY_COLUMNS, formatMs, formatRate, latencyCells, summarize } from "./stats.js";
import { packageVersion } from "./util.js";

export interface ClaimThroughputOptions extends HttpOptions {
  /** SQL: claimers per system (and pool size), jobs per round, alternating rounds. */
  sqlConcurrency: number;
  sqlJobsPerRound: number;
  sqlRounds: number;
}

export const claimThroughput: Benchmark<ClaimThroughputOptions> = {
  name: "claim-throughput",
  title: "2. Claim throughput",
  defaults: { httpClaimers: 50, httpJobs: 15_000, httpWarmup: 1000, httpProfileJobs: 5000, sqlConcurrency: 10, sqlJobsPerRound: 3000, sqlRounds: 5 },
  smoke: { httpClaimers: 3, httpJobs: 6, httpWarmup: 3, httpProfileJobs: 6, sqlConcurrency: 2, sqlJobsPerRound: 5, sqlRounds: 1 },
  run: runClaimThroughput,
};

async function runClaimThroughput(ctx: BenchContext, o: ClaimThroughputOptions) {
  ctx.progress(`HTTP: ${o.httpClaimers} claimers, ${o.httpWarmup} warm-up + ${o.httpJobs} measured claim+complete round trips`);
  const http = await httpRoundTrips(ctx, o);
  ctx.progress(`HTTP: ${formatRate((http.result.jobs / http.result.wallMs) * 1000)}/s`);
  const sql = await sqlRounds(ctx, o);
  return report(o, http, sql);
}

interface SqlTotals {
  label: string;
  rounds: DrainResult[];
  /** CPU seconds over all rounds' drains: this system's PostgreSQL backends, and this (Node) process. */
  postgresSec: number;
  nodeSec: number;
}

/**
 * Every system on one scratch database, in alternating rounds after an untimed warm-up round
 * each, same concurrency each. Each round queues (untimed), runs ANALYZE so every system plans
 * against the statistics a running deployment has, then drains while the CPU of the database's
 * backends and of this process is metered.
 */
async function sqlRounds(ctx: BenchContext, o: ClaimThroughputOptions): Promise<SqlTotals[]> {
  const db = await ctx.databases.create("claimsql");
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const systems: SqlSystem[] = [];
  try {
    systems.push(await fleetSql(db.url, o.sqlConcurrency, "batched"));
    systems.push(await fleetSql(db.url, o.sqlConcurrency, "successes-batched"));
    systems.push(await fleetSql(db.url, o.sqlConcurrency, "one-by-one"));
    systems.push(await fleetSql(db.url, o.sqlConcurrency, "previous"));
    systems.push(await pgBossSql(db.url, o.sqlConcurrency, packageVersion("pg-boss")));
    systems.push(await graphileSql(db.url, o.sqlConcurrency, packageVersion("graphile-worker")));
    systems.push(await graphileSql(db.url, o.sqlConcurrency, packageVersion("graphile-worker"), true));
    const totals: SqlTotals[] = systems.map((s) => ({ label: s.label, rounds: [], postgresSec: 0, nodeSec: 0 }));
    // One untimed round each first: no system is measured on its first statements (plans, caches),
    // and Fleet's attempt table holds history, as in any deployment that has run a while.
    for (const s of systems) {
      await s.queue(o.sqlJobsPerRound);
      await admin.query("analyze");
      await s.drain(o.sqlJobsPerRound, o.sqlConcurrency);
    }
    ctx.progress("SQL warm-up round done");
    for (let r = 0; r < o.sqlRounds; r++) {
      for (const [i, s] of systems.entries()) {
        await s.queue(o.sqlJobsPerRound);
        await admin.query("analyze");
        const backends = startBackendCpuSampler(admin, db.name);
        const node0 = process.cpuUsage();
        const result = await s.drain(o.sqlJobsPerRound, o.sqlConcurrency);
        const node = process.cpuUsage(node0);
        const t = totals[i]!;
        t.postgresSec += await backends.stop();
        t.nodeSec += (node.user + node.system) / 1e6;
        t.rounds.push(result);
        ctx.progress(`SQL round ${r + 1}/${o.sqlRounds} ${s.label}: ${formatRate((result.jobs / result.wallMs) * 1000)}/s`);
      }
    }
    return totals;
  } finally {
    for (const s of systems) await s.close().catch((err: unknown) => ctx.progress(`close failed: ${String(err)}`));
    await admin.end();
    await db.drop();
  }
}

function report(o: ClaimThroughputOptions, run: HttpRun, sql: SqlTotals[]) {
  const http = run.result;
  const httpRate = (http.jobs / http.wallMs) * 1000;
  const perTrip = (sec: number) => `${((sec * 1000) / http.jobs).toFixed(2)} ms`;
  const rows = sql.map(rowOf);
  const [fleet, successesBatched, oneByOne, previous, boss, graphile, graphileBatched] = rows as [Row, Row, Row, Row, Row, Row, Row];
  const vsGraphile = fleet.rate / graphile.rate;
  const pgVsPrevious = fleet.pgMsPerJob / previous.pgMsPerJob;
  const cpuTotal = run.cpu.processSec + run.cpu.postgresSec + run.cpu.selfSec;
  const blocks: Block[] = [
    text(
      `**Over HTTP.** ${o.httpClaimers} workers (capacity 1 each, one keep-alive socket each, undici, heartbeating every 5 s) loop *claim ` +
        "(`wait_ms` 0) → report `succeeded`* against the orchestrator process (default settings: pool of 20 connections, info logging) " +
        `until the queue is empty; ${o.httpWarmup.toLocaleString("en-US")} warm-up round trips, then ${http.jobs.toLocaleString("en-US")} measured. ` +
        "Jobs were queued by SQL beforehand; the client, the orchestrator and PostgreSQL share the same 2 cores. A 5xx answer is retried " +
        `like the worker's outbox would (${http.retried5xx} were).`,
    ),
    table(
      ["", "throughput (round trips/s)", ...LATENCY_COLUMNS],
      [
        ["claim + complete round trip", formatRate(httpRate), ...latencyCells(summarize(http.roundTrip))],
        ["`POST /internal/buffer/jobs/claim`", "", ...latencyCells(summarize(http.claim))],
        ["`POST /internal/buffer/jobs/{id}/status`", "", ...latencyCells(summarize(http.complete))],
      ],
    ),
    text(
      `CPU spent per round trip during the measured drain (from \`/proc\`; ${run.cpu.wallSec.toFixed(1)} s wall, ` +
        `${((cpuTotal / run.cpu.wallSec) * 100).toFixed(0)} % of one core used by these three together, out of 200 %):`,
    ),
    table(
      ["process", "CPU per round trip", "CPU % over the drain"],
      [
        ["orchestrator (Node)", perTrip(run.cpu.processSec), `${((run.cpu.processSec / run.cpu.wallSec) * 100).toFixed(0)} %`],
        ["PostgreSQL backends of its pool", perTrip(run.cpu.postgresSec), `${((run.cpu.postgresSec / run.cpu.wallSec) * 100).toFixed(0)} %`],
        ["benchmark client (undici)", perTrip(run.cpu.selfSec), `${((run.cpu.selfSec / run.cpu.wallSec) * 100).toFixed(0)} %`],
        ["total", perTrip(cpuTotal), `${((cpuTotal / run.cpu.wallSec) * 100).toFixed(0)} %`],
      ],
    ),
    ...errorBlocks("the measured drain", run.errors),
    profileBlock(`A further ${run.profileJobs.toLocaleString("en-US")} round trips against an orchestrator under \`node --cpu-prof\`; its self time by package`, run.profile),
    text(
      `**At the SQL level**, on one scratch database, ${o.sqlConcurrency} claimers per system over a pool of ${o.sqlConcurrency} connections, ` +
        `${o.sqlRounds} alternating rounds of ${o.sqlJobsPerRound.toLocaleString("en-US")} queued jobs per system after one untimed warm-up ` +
        "round each (queueing untimed, then `ANALYZE`, so every system plans with the statistics of a running deployment). Each claimer claims one job, completes it, " +
        "repeats until the queue is empty. Throughput: all jobs ÷ all drain time (per-round figures in brackets). Claim/complete " +
        "latencies in ms. CPU per job: the database's backends (sampled from `/proc` every 100 ms, so pools that connect during a drain " +
        "count too) and this Node process, over the drains only. The four Fleet rows are the A/B of the throughput work; the " +
        "target compares the first with graphile-worker as it runs by default, and the last row shows graphile-worker with its own " +
        "batching on, for a like-for-like view.",
    ),
    table(
      ["system", "jobs/s", "vs graphile-worker", "PostgreSQL CPU/job", "Node CPU/job", "claim p50", "claim p99", "complete p50", "complete p99"],
      rows.map((r) => [
        r.label,
        `${formatRate(r.rate)} (${r.rates.map(formatRate).join(", ")})`,
        `${(r.rate / graphile.rate).toFixed(2)}×`,
        `${r.pgMsPerJob.toFixed(3)} ms`,
        `${r.nodeMsPerJob.toFixed(3)} ms`,
        formatMs(r.claim.p50),
        formatMs(r.claim.p99),
        formatMs(r.complete.p50),
        formatMs(r.complete.p99),
      ]),
    ),
    text(
      "What each does per job. **Fleet**: the claim checks the worker (known, online, not draining or " +
        "quarantined, a free capacity slot, its tier), takes the job with `SKIP LOCKED`, writes the attempt row whose id fences every " +
        "later report; the success locks attempt then job by primary key, checks the attempt is the job's current one and the worker " +
        "has no failure streak, closes both and keeps the history (attempt row, metrics, output); both commit with the WAL flushed. " +
        "With `ClaimBatcher` and `SuccessBatcher` the claims, and the reports, submitted in one event-loop turn or while a statement " +
        "runs share the next statement, each still answered as if alone. **pg-boss**: `fetch` and `complete` are one statement each, " +
        "no owner check. **graphile-worker**: its `get_job` SQL and a `DELETE` (no history), timed from its own worker's events (its " +
        "complete time is the event gap, not a query); with its batching on, one query locks up to 11 jobs for the local queue and " +
        "completions are deleted together. " +
        `Fleet vs graphile-worker: ${vsGraphile.toFixed(2)}× the throughput; Fleet's PostgreSQL CPU per job is ` +
        `${(pgVsPrevious * 100).toFixed(0)} % of the previous release's; claims one statement each: ${formatRate(successesBatched.rate)}/s; claims and successes one statement each: ${formatRate(oneByOne.rate)}/s; ` +
        `pg-boss ${formatRate(boss.rate)}/s; graphile-worker with its batching on ${formatRate(graphileBatched.rate)}/s ` +
        `(Fleet ${(fleet.rate / graphileBatched.rate).toFixed(2)}× of it).`,
    ),
  ];
  return {
    targets: [
      { what: `claim + complete over HTTP, ${o.httpClaimers} concurrent claimers`, target: "≥ 1,000 /s", measured: `${formatRate(httpRate)} /s`, met: httpRate >= 1000 },
      {
        what: "Fleet claim + success vs graphile-worker `get_job` + complete (SQL level, jobs/s, same run)",
        target: "≥ 1.0×",
        measured: `${vsGraphile.toFixed(2)}× (${formatRate(fleet.rate)} vs ${formatRate(graphile.rate)})`,
        met: vsGraphile >= 1,
      },
      {
        what: "PostgreSQL CPU per job (claim + success), Fleet now vs the previous release's statements (SQL level, same run)",
        target: "≤ 0.5×",
        measured: `${pgVsPrevious.toFixed(2)}× (${fleet.pgMsPerJob.toFixed(3)} vs ${previous.pgMsPerJob.toFixed(3)} ms)`,
        met: pgVsPrevious <= 0.5,
      },
    ],
    blocks,
  };
}

type Row = ReturnType<typeof rowOf>;

function rowOf(t: SqlTotals) {
  const jobs = t.rounds.reduce((a, r) => a + r.jobs, 0);
  const wall = t.rounds.reduce((a, r) => a + r.wallMs, 0);
  return {
    label: t.label,
    rate: (jobs / wall) * 1000,
    rates: t.rounds.map((r) => (r.jobs / r.wallMs) * 1000),
    claim: summarize(t.rounds.flatMap((r) => r.claim)),
    complete: summarize(t.rounds.flatMap((r) => r.complete)),
    pgMsPerJob: (t.postgresSec * 1000) / jobs,
    nodeMsPerJob: (t.nodeSec * 1000) / jobs,
  };
}
