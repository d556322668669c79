import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { ClaimBatcher, claimNextJob, createDatabase, createLogger, reportAttemptStatus, SuccessBatcher } from "@fleet/orchestrator";
import { Logger, makeWorkerUtils, run as runGraphile } from "graphile-worker";
import pg from "pg";
import { PgBoss } from "pg-boss";
import { previousClaim, previousComplete } from "./previous-release.js";
import { queueJobs, registerWorkers, touchWorkers } from "./seed-sql.js";

/** One drain of `jobs` queued jobs by `concurrency` claimers that each claim one job and complete it. */
export interface DrainResult {
  jobs: number;
  wallMs: number;
  /** Claim call → job in hand (ms). */
  claim: number[];
  /** Complete call → acknowledged (ms). */
  complete: number[];
}

export interface SqlSystem {
  label: string;
  /** Queue `jobs` runnable jobs (untimed, outside the CPU metering). */
  queue(jobs: number): Promise<void>;
  /** Drain the `jobs` queued jobs with `concurrency` claimers (timed). */
  drain(jobs: number, concurrency: number): Promise<DrainResult>;
  close(): Promise<void>;
}

const silentGraphileLogger = new Logger(() => () => undefined);

/** Runs `concurrency` loops of claim → complete until one finds the queue empty. */
async function claimLoops(
  concurrency: number,
  step: (loop: number) => Promise<{ claimMs: number; completeMs: number } | null>,
): Promise<Omit<DrainResult, "jobs">> {
  const claim: number[] = [];
  const complete: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (;;) {
        const r = await step(loop);
        if (!r) return;
        claim.push(r.claimMs);
        complete.push(r.completeMs);
      }
    }),
  );
  return { wallMs: performance.now() - t0, claim, complete };
}

/**
 * The Fleet rows of the A/B: claims and successes grouped as the orchestrator runs them now;
 * only successes grouped (the last release's claims); each one statement; the previous release's
 * statements.
 */
export type FleetVariant = "batched" | "successes-batched" | "one-by-one" | "previous";

const FLEET_LABELS: Record<FleetVariant, string> = {
  batched: "Fleet: claims through `ClaimBatcher`, successes through `SuccessBatcher` (as the orchestrator runs them)",
  "successes-batched": "Fleet, claims one statement each as in the last release (e2979a1), successes through `SuccessBatcher`",
  "one-by-one": "Fleet, claims and successes one statement each",
  previous: "Fleet, previous release's claim and success statements (0fed714)",
};

/**
 * Fleet's claim statement (`claimNextJob`) and its completion (`reportAttemptStatus`, what
 * `POST .../status` runs), called in-process through the orchestrator's own drizzle/pg pool: the
 * SQL cost without HTTP. Each loop is one worker of capacity 1. `variant` picks the A/B side.
 */
export async function fleetSql(url: string, concurrency: number, variant: FleetVariant = "batched"): Promise<SqlSystem> {
  const log = createLogger({ LOG_LEVEL: "silent", LOG_PRETTY: false });
  const handle = await createDatabase({ DATABASE_URL: url, DATA_DIR: "unused", DATABASE_POOL_MAX: concurrency }, log);
  const seed = new pg.Client({ connectionString: url });
  await seed.connect();
  const prefix = `sqlclaim-${variant}`;
  const workers = await registerWorkers(seed, prefix, concurrency);
  const policy = { retryBackoffBaseSec: 10, quarantineAfterFailures: 3, quarantineSec: 600 };
  const successes = new SuccessBatcher(handle.db);
  const claims = new ClaimBatcher(handle.db);
  const pool = handle.raw.kind === "postgres" ? handle.raw.pool : null;
  if (!pool) throw new Error("the SQL benchmark needs PostgreSQL");
  const report = { status: "succeeded", output_url: "http://127.0.0.1/o.mp4", error: null, metrics: {} } as const;
  const claimAndComplete = async (workerId: string): Promise<{ claimMs: number; completeMs: number } | null> => {
    const t0 = performance.now();
    if (variant === "previous") {
      const job = await previousClaim(pool, workerId, 30, 30);
      const t1 = performance.now();
      if (!job) return null;
      if (!(await previousComplete(pool, job.buffer_job_id, report.output_url))) throw new Error("previous completion not applied");
      return { claimMs: t1 - t0, completeMs: performance.now() - t1 };
    }
    const options = { workerId, leaseTtlSec: 30, offlineAfterSec: 30 };
    const job = await (variant === "batched" ? claims.claim(options) : claimNextJob(handle.db, options));
    const t1 = performance.now();
    if (!job) return null;
    const outcome = await reportAttemptStatus(handle.db, job.buffer_job_id, report, policy, variant === "batched" || variant === "successes-batched" ? successes.complete : undefined);
    if (outcome.kind !== "applied") throw new Error(`completion not applied: ${JSON.stringify(outcome)}`);
    return { claimMs: t1 - t0, completeMs: performance.now() - t1 };
  };
  return {
    label: FLEET_LABELS[variant],
    async queue(jobs) {
      await queueJobs(seed, jobs);
      await touchWorkers(seed, prefix);
    },
    async drain(jobs) {
      const r = await claimLoops(concurrency, (loop) => claimAndComplete(workers[loop]!));
      return { jobs, ...r };
    },
    async close() {
      await seed.end();
      await handle.close();
    },
  };
}

/** pg-boss's public API: `fetch` (batch size 1) and `complete`, with a pool of `concurrency` connections. */
export async function pgBossSql(url: string, concurrency: number, version: string): Promise<SqlSystem> {
  const boss = new PgBoss({ connectionString: url, max: concurrency, schedule: false });
  boss.on("error", (err) => process.stderr.write(`pg-boss error: ${String(err)}\n`));
  await boss.start();
  const queueName = "bench";
  await boss.createQueue(queueName);
  return {
    label: `pg-boss ${version}: \`fetch\` + \`complete\``,
    async queue(jobs) {
      for (let done = 0; done < jobs; done += 1000) {
        const n = Math.min(1000, jobs - done);
        await boss.insert(queueName, Array.from({ length: n }, (_, i) => ({ data: { i: done + i } })));
      }
    },
    async drain(jobs) {
      const r = await claimLoops(concurrency, async () => {
        const t0 = performance.now();
        const [job] = await boss.fetch(queueName);
        const t1 = performance.now();
        if (!job) return null;
        await boss.complete(queueName, job.id);
        return { claimMs: t1 - t0, completeMs: performance.now() - t1 };
      });
      return { jobs, ...r };
    },
    async close() {
      await boss.stop({ graceful: false });
    },
  };
}

/**
 * graphile-worker has no public fetch/complete: its worker claims (`getJob`) and completes
 * internally. The jobs are queued with `addJobs`, then a runner with `concurrency` workers and a
 * no-op task drains them; its events time each worker's claim (`worker:getJob:start` →
 * `job:start`) and completion (`job:start` → `job:complete`, the task itself does nothing).
 * `batched` turns on its own batching, as its performance guide suggests: a local queue of
 * `concurrency + 1` jobs fetched per query, and completions batched (`completeJobBatchDelay` 0).
 */
export async function graphileSql(url: string, concurrency: number, version: string, batched = false): Promise<SqlSystem> {
  const utils = await makeWorkerUtils({ connectionString: url, logger: silentGraphileLogger });
  await utils.migrate();
  return {
    label: batched
      ? `graphile-worker ${version} with its batching on (local queue of ${concurrency + 1}, completions batched)`
      : `graphile-worker ${version}: its worker's \`getJob\` + complete`,
    async queue(jobs) {
      for (let done = 0; done < jobs; done += 1000) {
        const n = Math.min(1000, jobs - done);
        await utils.addJobs(Array.from({ length: n }, (_, i) => ({ identifier: "drain", payload: { i: done + i } })));
      }
    },
    async drain(jobs) {
      const claim: number[] = [];
      const complete: number[] = [];
      const getJobAt = new Map<string, number>();
      const startAt = new Map<string, number>();
      let first = Infinity;
      let last = 0;
      let finished = 0;
      let allDone: () => void = () => undefined;
      const drained = new Promise<void>((resolve) => {
        allDone = resolve;
      });
      const events = new EventEmitter();
      events.on("worker:getJob:start", ({ worker }: { worker: { workerId: string } }) => {
        const t = performance.now();
        getJobAt.set(worker.workerId, t);
        first = Math.min(first, t);
      });
      events.on("job:start", ({ worker }: { worker: { workerId: string } }) => {
        const t = performance.now();
        claim.push(t - (getJobAt.get(worker.workerId) ?? t));
        startAt.set(worker.workerId, t);
      });
      events.on("job:complete", ({ worker }: { worker: { workerId: string } }) => {
        const t = performance.now();
        complete.push(t - (startAt.get(worker.workerId) ?? t));
        last = t;
        if (++finished >= jobs) allDone();
      });
      const runner = await runGraphile({
        connectionString: url,
        concurrency,
        maxPoolSize: concurrency,
        noHandleSignals: true,
        pollInterval: 2000,
        logger: silentGraphileLogger,
        events,
        taskList: { drain: () => Promise.resolve() },
        ...(batched ? { preset: { worker: { localQueue: { size: concurrency + 1 }, completeJobBatchDelay: 0 } } } : {}),
      });
      try {
        await drained;
      } finally {
        await runner.stop();
      }
      return { jobs, wallMs: last - first, claim, complete };
    },
    async close() {
      await utils.release();
    },
  };
}
