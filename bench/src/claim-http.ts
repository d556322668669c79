import type { OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { performance } from "node:perf_hooks";
import pg from "pg";
import type { BenchContext } from "./benchmark.js";
import type { ProfileSummary } from "./cpu-profile.js";
import { FleetClient, HttpStatusError } from "./fleet-client.js";
import { orchestratorErrors, startFleetOrchestrator, startProfiledOrchestrator } from "./fleet-orchestrator.js";
import { startCpuMeter } from "./proc-stats.js";
import { queueJobs } from "./seed-sql.js";
import { every, sleep } from "./util.js";

export interface HttpOptions {
  /** Concurrent claimers, each a worker of capacity 1 with its own socket. */
  httpClaimers: number;
  /** Measured round trips (after the warm-up). */
  httpJobs: number;
  httpWarmup: number;
  /** Round trips of the separate drain run under --cpu-prof. */
  httpProfileJobs: number;
}

export interface HttpResult {
  wallMs: number;
  jobs: number;
  roundTrip: number[];
  claim: number[];
  complete: number[];
  /** 5xx answers that were retried (a real worker retries them too). */
  retried5xx: number;
}

export interface HttpRun {
  result: HttpResult;
  cpu: { processSec: number; postgresSec: number; selfSec: number; wallSec: number };
  errors: { what: string; count: number }[];
  profile: ProfileSummary;
  profileJobs: number;
}

/** Retries 5xx answers a few times, as the worker's outbox would, and counts them. */
async function retrying<T>(work: () => Promise<T>, onRetry: () => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof HttpStatusError) || err.status < 500 || attempt >= 5) throw err;
      onRetry();
      await sleep(10 * attempt);
    }
  }
}

/** What each worker holds right now, so its heartbeat says `busy` with `active_jobs` as the worker app's does. */
type Held = Map<string, string | null>;

function beat(client: FleetClient, held: Held, workerId: string): Promise<void> {
  const id = held.get(workerId) ?? null;
  return client.heartbeat(workerId, id ? { status: "busy", active_jobs: [id] } : { status: "idle", active_jobs: [] });
}

/** `workers` loop claim (`wait_ms` 0) → report succeeded until the queue (seeded with `jobs`) is empty. */
async function drainOverHttp(client: FleetClient, seed: pg.Client, workers: string[], jobs: number, held: Held): Promise<HttpResult> {
  await queueJobs(seed, jobs);
  const r: HttpResult = { wallMs: 0, jobs, roundTrip: [], claim: [], complete: [], retried5xx: 0 };
  const retried = () => void r.retried5xx++;
  const t0 = performance.now();
  await Promise.all(
    workers.map(async (workerId) => {
      for (;;) {
        const a = performance.now();
        const res = await retrying(() => client.claim(workerId, 0), retried);
        const b = performance.now();
        if (!res.job) {
          if (res.reason !== "no_job") throw new Error(`claim refused: ${res.reason}`);
          return;
        }
        const id = res.job.buffer_job_id;
        held.set(workerId, id);
        await retrying(() => client.succeed(id), retried);
        held.set(workerId, null);
        const c = performance.now();
        r.claim.push(b - a);
        r.complete.push(c - b);
        r.roundTrip.push(c - a);
      }
    }),
  );
  r.wallMs = performance.now() - t0;
  return r;
}

/**
 * Over real HTTP: `httpClaimers` workers, each of capacity 1 and heartbeating every 5 s like the
 * worker app, drain the queue against the orchestrator process with its default settings. CPU is
 * metered for the orchestrator, its PostgreSQL backends and this (client) process. A second,
 * shorter drain runs under `--cpu-prof` to show where the orchestrator's CPU goes.
 */
export async function httpRoundTrips(ctx: BenchContext, o: HttpOptions): Promise<HttpRun> {
  const db = await ctx.databases.create("claimhttp");
  const seed = new pg.Client({ connectionString: db.url });
  await seed.connect();
  const workers = Array.from({ length: o.httpClaimers }, (_, i) => `http-claimer-${i}`);
  const withOrchestrator = async <T>(orchestrator: OrchestratorProcess, work: (client: FleetClient, held: Held) => Promise<T>): Promise<T> => {
    const client = new FleetClient({ url: orchestrator.url, internalApiKey: orchestrator.internalApiKey, publicApiKey: orchestrator.publicApiKey, connections: o.httpClaimers + 2 });
    const held: Held = new Map();
    await Promise.all(workers.map((w) => beat(client, held, w)));
    const stopBeats = every(5000, () => Promise.all(workers.map((w) => retrying(() => beat(client, held, w), () => undefined))), (err) => ctx.progress(`heartbeat failed: ${String(err)}`));
    try {
      return await work(client, held);
    } finally {
      stopBeats();
      await client.close();
    }
  };
  try {
    const orchestrator = await startFleetOrchestrator(db.url);
    let measured: Omit<HttpRun, "profile" | "profileJobs">;
    try {
      measured = await withOrchestrator(orchestrator, async (client, held) => {
        await drainOverHttp(client, seed, workers, o.httpWarmup, held);
        const meter = await startCpuMeter(orchestrator.pid, seed, db.name);
        const result = await drainOverHttp(client, seed, workers, o.httpJobs, held);
        return { result, cpu: await meter.stop(), errors: orchestratorErrors(orchestrator) };
      });
    } finally {
      await orchestrator.stop();
    }
    ctx.progress(`HTTP: profiling ${o.httpProfileJobs} more round trips under --cpu-prof`);
    const profiled = await startProfiledOrchestrator(db.url);
    try {
      await withOrchestrator(profiled.proc, (client, held) => drainOverHttp(client, seed, workers, o.httpProfileJobs, held));
    } catch (err) {
      await profiled.abandon();
      throw err;
    }
    return { ...measured, profile: await profiled.finish(), profileJobs: o.httpProfileJobs };
  } finally {
    await seed.end();
    await db.drop();
  }
}

