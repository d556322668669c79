import { table, text, type Benchmark, type BenchContext, type Block } from "./benchmark.js";
import { httpRoundTrips, type HttpOptions, type HttpRun } from "./claim-http.js";
import { errorBlocks, profileBlock } from "./diagnostics.js";
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
  defaults: { httpClaimers: 50, httpJobs: 15_000, httpWarmup: 1000, httpProfileJobs: 5000, sqlConcurrency: 10, sqlJobsPerRound: 3000, sqlRounds: 3 },
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

function report(o: ClaimThroughputOptions, run: HttpRun, sql: SqlTotals[]) {
  const http = run.result;
  const httpRate = (http.jobs / http.wallMs) * 1000;
  const perTrip = (sec: number) => `${((sec * 1000) / http.jobs).toFixed(2)} ms`;
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
        "writes the attempt row that fences later reports; its completion is a transaction of six round trips (BEGIN, lock the attempt, " +
        "lock the job, close the attempt, close the job and reset the worker's failure streak, COMMIT). pg-boss's `fetch` and `complete` " +
        "are one statement each with no owner check. graphile-worker's claim is its `get_job` SQL and its completion a `DELETE`; it " +
        "exposes no fetch API, so its numbers come from its own worker's events (its complete time is the event gap, not a query). " +
        `Median of per-round throughputs: Fleet ${formatRate(median(fleet.rates))}/s, pg-boss ${formatRate(median(boss.rates))}/s.`,
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
