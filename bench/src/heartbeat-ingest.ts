import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { table, text, type Benchmark, type BenchContext, type Block } from "./benchmark.js";
import type { ProfileSummary } from "./cpu-profile.js";
import { errorBlocks, profileBlock } from "./diagnostics.js";
import { orchestratorErrors, startFleetOrchestrator, startProfiledOrchestrator } from "./fleet-orchestrator.js";
import type { LoadArgs, LoadResult } from "./heartbeat-load.js";
import { backendPids, builtScript, cpuSeconds } from "./proc-stats.js";
import { registerWorkers } from "./seed-sql.js";
import { formatMs, formatRate } from "./stats.js";
import { sleep } from "./util.js";

const run = promisify(execFile);

export interface HeartbeatIngestOptions {
  workers: number;
  startRate: number;
  stepRate: number;
  maxRate: number;
  stepMs: number;
  warmupMs: number;
  connections: number;
  p99LimitMs: number;
}

export const heartbeatIngest: Benchmark<HeartbeatIngestOptions> = {
  name: "heartbeat-ingest",
  title: "4. Heartbeat ingest",
  defaults: { workers: 20_000, startRate: 1000, stepRate: 1000, maxRate: 12_000, stepMs: 10_000, warmupMs: 2000, connections: 64, p99LimitMs: 50 },
  smoke: { workers: 50, startRate: 50, stepRate: 50, maxRate: 100, stepMs: 1000, warmupMs: 500, connections: 4, p99LimitMs: 50 },
  run: runHeartbeatIngest,
};

interface Step extends LoadResult {
  orchestratorCpuPct: number;
  postgresCpuPct: number;
  pass: boolean;
  note: string;
}

async function cpuOf(pids: number[]): Promise<Map<number, number>> {
  return new Map(await Promise.all(pids.map(async (p) => [p, await cpuSeconds(p)] as const)));
}

async function runHeartbeatIngest(ctx: BenchContext, o: HeartbeatIngestOptions) {
  const db = await ctx.databases.create("heartbeat");
  const seed = new pg.Client({ connectionString: db.url });
  await seed.connect();
  let orchestrator = await startFleetOrchestrator(db.url);
  const steps: Step[] = [];
  try {
    // Steady state: every worker already known, so each heartbeat is the update path of the upsert.
    await registerWorkers(seed, "hb", o.workers);
    // Settle the fresh table (statistics, visibility map) so autovacuum does not start mid-step.
    await seed.query("vacuum analyze buffer_workers");
    const script = builtScript(import.meta.url, "heartbeat-load-main");
    const measure = async (rate: number, note: string, record = true): Promise<Step> => {
      const args: LoadArgs = { url: orchestrator.url, internalApiKey: orchestrator.internalApiKey, rate, durationMs: o.stepMs, warmupMs: o.warmupMs, workers: o.workers, workerPrefix: "hb", connections: o.connections };
      const pids = await backendPids(seed, db.name);
      const [orch0, pg0] = [await cpuSeconds(orchestrator.pid), await cpuOf(pids)];
      const t0 = Date.now();
      const { stdout } = await run(process.execPath, [script, JSON.stringify(args)], { maxBuffer: 1 << 20, timeout: o.warmupMs + o.stepMs + 60_000 });
      const wall = (Date.now() - t0) / 1000;
      const pg1 = await cpuOf(await backendPids(seed, db.name));
      const pgUsed = [...pg1].reduce((sum, [pid, s]) => sum + s - (pg0.get(pid) ?? 0), 0);
      const r = JSON.parse(stdout) as LoadResult;
      const pass = r.errors === 0 && r.latency.p99 <= o.p99LimitMs && r.achievedPerSec >= rate * 0.97;
      const step: Step = { ...r, orchestratorCpuPct: ((await cpuSeconds(orchestrator.pid)) - orch0) / wall * 100, postgresCpuPct: (pgUsed / wall) * 100, pass, note };
      ctx.progress(`${rate}/s${note ? ` (${note})` : ""}: p50 ${formatMs(r.latency.p50)} p99 ${formatMs(r.latency.p99)} ms, ${r.errors} errors, orchestrator ${step.orchestratorCpuPct.toFixed(0)} % CPU → ${pass ? "pass" : "FAIL"}`);
      if (record) steps.push(step);
      await sleep(2000);
      return step;
    };

    // One unrecorded step first: JIT, connection pools and caches warm up on both sides.
    await measure(o.startRate, "warm-up", false);
    let lastPass = 0;
    let firstFail = 0;
    for (let rate = o.startRate; rate <= o.maxRate; rate += o.stepRate) {
      let s = await measure(rate, "");
      // One failed step on a shared machine may be someone else's burst: confirm before stopping.
      if (!s.pass) s = await measure(rate, "repeat");
      if (!s.pass) {
        firstFail = rate;
        break;
      }
      lastPass = rate;
    }
    if (firstFail > 0 && firstFail - lastPass > o.stepRate / 2 - 1 && lastPass > 0) {
      const mid = lastPass + Math.round(o.stepRate / 2);
      const s = await measure(mid, "refine");
      if (s.pass) lastPass = mid;
    }
    const errors = orchestratorErrors(orchestrator);
    await orchestrator.stop();
    // Where the CPU goes at the rate that broke it (or the highest rate tried): a separate run under --cpu-prof.
    const profileRate = firstFail > 0 ? firstFail : steps.reduce((m, s) => Math.max(m, s.rate), 0);
    ctx.progress(`profiling ${profileRate}/s under --cpu-prof`);
    const profiled = await startProfiledOrchestrator(db.url);
    orchestrator = profiled.proc;
    let profile: ProfileSummary;
    try {
      await measure(profileRate, "profile", false);
    } finally {
      profile = await profiled.finish();
    }
    return report(o, steps, lastPass, firstFail, errors, { rate: profileRate, profile });
  } finally {
    await orchestrator.stop();
    await seed.end();
    await db.drop();
  }
}

function report(
  o: HeartbeatIngestOptions,
  steps: Step[],
  best: number,
  firstFail: number,
  errors: { what: string; count: number }[],
  prof: { rate: number; profile: ProfileSummary },
) {
  const blocks: Block[] = [
    text(
      `One orchestrator process (defaults: pool of 20 connections, info logging) with ${o.workers.toLocaleString("en-US")} registered workers. ` +
        `A separate Node process (undici, ${o.connections} keep-alive connections) sends heartbeats as the worker does ` +
        "(status, GPU class, engine health, system facts; worker ids in rotation) at a fixed rate — open loop, latency measured from " +
        `each request's due time, so falling behind counts — for ${o.stepMs / 1000} s per step after ${o.warmupMs / 1000} s of unrecorded warm-up at the same rate, stepping the rate up until p99 passes ` +
        `${o.p99LimitMs} ms (or any request fails, or the achieved rate falls below 97 % of the target). A failing step is repeated once ` +
        "before it counts, and the half step below the first failure is tried; one unrecorded step at the start rate warms both sides up. CPU % is CPU time ÷ wall time over the step " +
        "(100 % = one core); PostgreSQL's is the orchestrator's backends only.",
    ),
    table(
      ["target /s", "achieved /s", "p50", "p90", "p99", "max", "errors", "orchestrator CPU", "PostgreSQL CPU", "load client CPU", "p99 ≤ " + o.p99LimitMs + " ms", "note"],
      steps.map((s) => [
        formatRate(s.rate),
        formatRate(s.achievedPerSec),
        formatMs(s.latency.p50),
        formatMs(s.latency.p90),
        formatMs(s.latency.p99),
        formatMs(s.latency.max),
        `${s.errors}${s.firstError ? ` (${s.firstError})` : ""}`,
        `${s.orchestratorCpuPct.toFixed(0)} %`,
        `${s.postgresCpuPct.toFixed(0)} %`,
        `${s.clientCpuPct.toFixed(0)} %`,
        s.pass ? "yes" : "no",
        s.note,
      ]),
    ),
    text(
      firstFail > 0
        ? `Highest rate sustained with p99 ≤ ${o.p99LimitMs} ms: **${formatRate(best)} heartbeats/s**; p99 crossed ${o.p99LimitMs} ms at ${formatRate(firstFail)}/s.`
        : `Every step up to ${formatRate(o.maxRate)}/s kept p99 ≤ ${o.p99LimitMs} ms (the benchmark's ceiling, not the orchestrator's).`,
    ),
    ...errorBlocks("the steps", errors),
    profileBlock(`One more ${o.stepMs / 1000} s step at ${formatRate(prof.rate)}/s against an orchestrator under \`node --cpu-prof\`; its self time by package`, prof.profile),
  ];
  return {
    targets: [{ what: "heartbeats/s one orchestrator sustains with p99 ≤ 50 ms", target: "≥ 4,000 /s", measured: `${formatRate(best)} /s`, met: best >= 4000 }],
    blocks,
  };
}
