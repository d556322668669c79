import { performance } from "node:perf_hooks";
import pg from "pg";
import { table, text, type Benchmark, type BenchContext, type Block } from "./benchmark.js";
import { FleetClient } from "./fleet-client.js";
import { startFleetOrchestrator } from "./fleet-orchestrator.js";
import { queueJobs } from "./seed-sql.js";
import { fleetSql, graphileSql, pgBossSql, type DrainResult, type SqlSystem } from "./sql-claimers.js";
import { LATENCY_COLUMNS, formatMs, formatRate, latencyCells, summarize } from "./stats.js";
import { every, packageVersion } from "./util.js";

export interface ClaimThroughputOptions {
  /** HTTP: concurrent claimers, each a worker of capacity 1 with its own socket. */
  httpClaimers: number;
  /** HTTP: measured round trips (after the warm-up). */
  httpJobs: number;
  httpWarmup: number;
  /** SQL: claimers per system (and pool size), jobs per round, alternating rounds. */
  sqlConcurrency: number;
  sqlJobsPerRound: number;
  sqlRounds: number;
}

export const claimThroughput: Benchmark<ClaimThroughputOptions> = {
  name: "claim-throughput",
  title: "2. Claim throughput",
  defaults: { httpClaimers: 50, httpJobs: 15_000, httpWarmup: 1000, sqlConcurrency: 10, sqlJobsPerRound: 3000, sqlRounds: 3 },
  smoke: { httpClaimers: 3, httpJobs: 6, httpWarmup: 3, sqlConcurrency: 2, sqlJobsPerRound: 5, sqlRounds: 1 },
  run: runClaimThroughput,
};

interface HttpResult {
  wallMs: number;
  jobs: number;
  roundTrip: number[];
  claim: number[];
  complete: number[];
}

async function runClaimThroughput(ctx: BenchContext, o: ClaimThroughputOptions) {
  ctx.progress(`HTTP: ${o.httpClaimers} claimers, ${o.httpWarmup} warm-up + ${o.httpJobs} measured claim+complete round trips`);
  const http = await httpRoundTrips(ctx, o);
  ctx.progress(`HTTP: ${formatRate((http.jobs / http.wallMs) * 1000)}/s`);
  const sql = await sqlRounds(ctx, o);
  return report(o, http, sql);
}

/**
 * Over real HTTP: `httpClaimers` workers each loop claim (`wait_ms` 0) → report succeeded, against
 * the orchestrator process with its default pool, until the queue (seeded with exactly
 * warm-up + measured jobs) is empty.
 */
async function httpRoundTrips(ctx: BenchContext, o: ClaimThroughputOptions): Promise<HttpResult> {
  const db = await ctx.databases.create("claimhttp");
  const orchestrator = await startFleetOrchestrator(db.url);
  const client = new FleetClient({ url: orchestrator.url, internalApiKey: orchestrator.internalApiKey, publicApiKey: orchestrator.publicApiKey, connections: o.httpClaimers + 2 });
  const seed = new pg.Client({ connectionString: db.url });
  await seed.connect();
  const workers = Array.from({ length: o.httpClaimers }, (_, i) => `http-claimer-${i}`);
  const stopBeats = every(5000, () => Promise.all(workers.map((w) => client.heartbeat(w))), (err) => ctx.progress(`heartbeat failed: ${String(err)}`));
  try {
    await Promise.all(workers.map((w) => client.heartbeat(w)));
    const drain = async (jobs: number): Promise<HttpResult> => {
      await queueJobs(seed, jobs);
      const roundTrip: number[] = [];
      const claim: number[] = [];
      const complete: number[] = [];
      const t0 = performance.now();
      await Promise.all(
        workers.map(async (workerId) => {
          for (;;) {
            const a = performance.now();
            const res = await client.claim(workerId, 0);
            const b = performance.now();
            if (!res.job) {
              if (res.reason !== "no_job") throw new Error(`claim refused: ${res.reason}`);
              return;
            }
            await client.succeed(res.job.buffer_job_id);
            const c = performance.now();
            claim.push(b - a);
            complete.push(c - b);
            roundTrip.push(c - a);
          }
        }),
      );
      return { wallMs: performance.now() - t0, jobs, roundTrip, claim, complete };
    };
    await drain(o.httpWarmup);
    return await drain(o.httpJobs);
  } finally {
    stopBeats();
    await seed.end();
    await client.close();
    await orchestrator.stop();
    await db.drop();
  }
}

interface SqlTotals {
  label: string;
  rounds: DrainResult[];
}

/** The three systems on one scratch database, in alternating rounds, same concurrency each. */
async function sqlRounds(ctx: BenchContext, o: ClaimThroughputOptions): Promise<SqlTotals[]> {
  const db = await ctx.databases.create("claimsql");
  const systems: SqlSystem[] = [];
  try {
    systems.push(await fleetSql(db.url, o.sqlConcurrency));
    systems.push(await pgBossSql(db.url, o.sqlConcurrency, packageVersion("pg-boss")));
    systems.push(await graphileSql(db.url, o.sqlConcurrency, packageVersion("graphile-worker")));
    const totals: SqlTotals[] = systems.map((s) => ({ label: s.label, rounds: [] }));
    for (let r = 0; r < o.sqlRounds; r++) {
      for (const [i, s] of systems.entries()) {
        const result = await s.drain(o.sqlJobsPerRound, o.sqlConcurrency);
        totals[i]!.rounds.push(result);
        ctx.progress(`SQL round ${r + 1}/${o.sqlRounds} ${s.label}: ${formatRate((result.jobs / result.wallMs) * 1000)}/s`);
      }
    }
    return totals;
  } finally {
    for (const s of systems) await s.close().catch((err: unknown) => ctx.progress(`close failed: ${String(err)}`));
    await db.drop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
}

function report(o: ClaimThroughputOptions, http: HttpResult, sql: SqlTotals[]) {
  const httpRate = (http.jobs / http.wallMs) * 1000;
  const rows = sql.map((t) => {
    const jobs = t.rounds.reduce((a, r) => a + r.jobs, 0);
    const wall = t.rounds.reduce((a, r) => a + r.wallMs, 0);
    return {
      label: t.label,
      rate: (jobs / wall) * 1000,
      rates: t.rounds.map((r) => (r.jobs / r.wallMs) * 1000),
      claim: summarize(t.rounds.flatMap((r) => r.claim)),
      complete: summarize(t.rounds.flatMap((r) => r.complete)),
    };
  });
  const fleet = rows[0]!;
  const boss = rows[1]!;
  const blocks: Block[] = [
    text(
      `**Over HTTP.** ${o.httpClaimers} workers (capacity 1 each, one keep-alive socket each, undici) loop *claim (\`wait_ms\` 0) → ` +
        "report `succeeded`* against the orchestrator process (default settings: pool of 20 connections, info logging) until the " +
        `queue is empty; ${o.httpWarmup.toLocaleString("en-US")} warm-up round trips, then ${http.jobs.toLocaleString("en-US")} measured. ` +
        "Jobs were queued by SQL beforehand; the client, the orchestrator and PostgreSQL share the same 2 cores.",
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
      `**At the SQL level**, on one scratch database, ${o.sqlConcurrency} claimers per system over a pool of ${o.sqlConcurrency} connections, ` +
        `${o.sqlRounds} alternating rounds of ${o.sqlJobsPerRound.toLocaleString("en-US")} queued jobs per system (queueing untimed). ` +
        "Each claimer claims one job, completes it, repeats until the queue is empty. Throughput: all jobs ÷ all drain time (per-round " +
        "figures in brackets). Claim/complete latencies in ms.",
    ),
    table(
      ["system", "jobs/s", "claim p50", "claim p90", "claim p99", "claim max", "complete p50", "complete p99"],
      rows.map((r) => [
        r.label,
        `${formatRate(r.rate)} (${r.rates.map(formatRate).join(", ")})`,
        formatMs(r.claim.p50),
        formatMs(r.claim.p90),
        formatMs(r.claim.p99),
        formatMs(r.claim.max),
        formatMs(r.complete.p50),
        formatMs(r.complete.p99),
      ]),
    ),
    text(
      "Fleet's claim is one statement that also checks the worker (online, not draining or quarantined, a free capacity slot) and " +
        "writes the attempt row that fences later reports; its completion is a transaction that locks the attempt and the job, " +
        "closes both and resets the worker's failure streak. pg-boss's `fetch` and `complete` are one statement each with no owner " +
        "check. graphile-worker's claim is its `get_job` SQL and its completion a `DELETE`; it exposes no fetch API, so its numbers " +
        `come from its own worker's events (median of per-round throughputs: Fleet ${formatRate(median(fleet.rates))}/s, ` +
        `pg-boss ${formatRate(median(boss.rates))}/s).`,
    ),
  ];
  return {
    targets: [
      { what: `claim + complete over HTTP, ${o.httpClaimers} concurrent claimers`, target: "≥ 1,000 /s", measured: `${formatRate(httpRate)} /s`, met: httpRate >= 1000 },
      {
        what: "Fleet claim statement vs pg-boss `fetch` (SQL level, p50)",
        target: "Fleet ≤ pg-boss",
        measured: `${formatMs(fleet.claim.p50)} ms vs ${formatMs(boss.claim.p50)} ms`,
        met: fleet.claim.p50 <= boss.claim.p50,
      },
    ],
    blocks,
  };
}
