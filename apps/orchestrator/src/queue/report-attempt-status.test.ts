import type { ListWorkersResponse } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { runReaperPass } from "../reaper.js";
import { reapExpiredLeases } from "./reap-expired-leases.js";
import {
  appTest,
  call,
  claim,
  claimJob,
  createJobId,
  createJobViaApi,
  expireLease,
  getJobView,
  heartbeat,
  reportStatus,
  snapshotTables,
  type TestApp,
} from "../test-support/harness.js";

async function jobRow(t: { db: { db: Parameters<typeof queryRows>[0] } }, id: string) {
  const [row] = await queryRows<{
    status: string;
    failures: number;
    attempts: number;
    interruptions: number;
    delay_sec: number;
    last_worker_id: string | null;
    error: string | null;
    error_info: Record<string, unknown> | null;
  }>(
    t.db.db,
    sql`select status, failures, attempts, interruptions, extract(epoch from run_after - now())::float8 as delay_sec,
               last_worker_id, error, error_info
          from jobs where id = ${id}`,
  );
  return row;
}

/** Makes a backed-off job runnable now (stands in for waiting out the backoff). */
async function skipBackoff(t: { db: { db: Parameters<typeof queryRows>[0] } }, id: string) {
  await t.db.db.execute(sql`update jobs set run_after = now() where id = ${id}`);
}

describe("terminal status reports", () => {
  appTest("an unknown attempt is 404 and a success without output_url is 422; neither changes anything", async ({ t }) => {
    await heartbeat(t.app, "w");
    await createJobViaApi(t.app);
    const job = await claimJob(t.app, "w");
    const before = await snapshotTables(t.db);
    const unknown = await reportStatus(t.app, "5f2b8c1e-2d7a-4c1b-9f3e-7a6b5c4d3e2f", { status: "failed", error: "x" });
    expect([unknown.status, unknown.error?.code]).toEqual([404, "not_found"]);
    const noOutput = await reportStatus(t.app, job.buffer_job_id, { status: "succeeded", output_url: null, error: null, metrics: null });
    expect([noOutput.status, noOutput.error?.code]).toEqual([422, "output_url_required"]);
    expect(await snapshotTables(t.db)).toBe(before);
  });

  appTest("a failure from an original worker (no error_info) retries with growing backoff, then fails after MAX_ATTEMPTS", async ({ startApp }) => {
    const t = await startApp({ MAX_ATTEMPTS: "3", RETRY_BACKOFF_BASE_SEC: "100" });
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app);
    const delays: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const job = await claimJob(t.app, "w");
      expect(job.attempt).toBe(i);
      const res = await reportStatus(t.app, job.buffer_job_id, { status: "failed", error: "HTTPStatusError('500')", output_url: null, metrics: null });
      const row = await jobRow(t, id);
      if (i < 3) {
        expect(res.json.job_status).toBe("queued");
        expect(row).toMatchObject({ status: "queued", failures: i, last_worker_id: "w" });
        delays.push(row!.delay_sec);
        await skipBackoff(t, id);
      } else {
        expect(res.json.job_status).toBe("failed");
        expect(row).toMatchObject({ status: "failed", failures: 3, error: "HTTPStatusError('500')" });
        expect(row?.error_info).toMatchObject({ error_type: "unknown_error", retryable: true });
      }
    }
    // base·2^0 then base·2^1, computed by the database.
    expect(delays[0]).toBeGreaterThan(95);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeGreaterThan(195);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  appTest("a media error fails the job at once and does not count against the worker", async ({ t }) => {
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app);
    const job = await claimJob(t.app, "w");
    const res = await reportStatus(t.app, job.buffer_job_id, {
      status: "failed",
      error: "no face detected",
      error_info: { error_type: "media_error", stage: "preprocessing", message: "no face detected", retryable: true, details: { frames: 0 } },
    });
    expect(res.json.job_status).toBe("failed");
    expect(await jobRow(t, id)).toMatchObject({ status: "failed", failures: 1 });
    const view = (await getJobView(t.app, id));
    expect(view.error_info).toEqual({ error_type: "media_error", stage: "preprocessing", message: "no face detected", retryable: true, details: { frames: 0 } });
    const [worker] = await queryRows<{ consecutive_failures: number }>(t.db.db, sql`select consecutive_failures from buffer_workers`);
    expect(worker?.consecutive_failures).toBe(0);
  });

  appTest("a worker failing N jobs in a row is quarantined; a success resets its count", async ({ startApp }) => {
    const t = await startApp({ QUARANTINE_AFTER_FAILURES: "2", QUARANTINE_SEC: "600" });
    await heartbeat(t.app, "flaky");
    const fail = { status: "failed", error: "CUDA error", error_info: { error_type: "processing_error", stage: "inference", message: "CUDA error", retryable: false } };
    for (let i = 0; i < 3; i++) await createJobViaApi(t.app);

    let job = await claimJob(t.app, "flaky");
    await reportStatus(t.app, job.buffer_job_id, fail);
    job = await claimJob(t.app, "flaky");
    await reportStatus(t.app, job.buffer_job_id, { status: "succeeded", output_url: "https://93.184.216.34/o.mp4" });
    job = await claimJob(t.app, "flaky");
    await reportStatus(t.app, job.buffer_job_id, fail);
    // fail, success, fail: not two in a row, still eligible.
    await createJobViaApi(t.app);
    job = await claimJob(t.app, "flaky");
    expect(job).not.toBeNull();
    await reportStatus(t.app, job.buffer_job_id, fail);
    // Now two in a row: quarantined.
    await createJobViaApi(t.app);
    expect((await claim(t.app, "flaky")).json).toEqual({ job: null, reason: "worker_quarantined" });
    const worker = (await call<ListWorkersResponse>(t.app, "GET", "/internal/buffer/workers")).json.workers[0];
    expect(worker?.quarantined_until).not.toBeNull();
    expect(t.logs.some((l) => l.includes('"worker_quarantined"'))).toBe(true);
  });

  appTest("released hands the job back at once without counting a failure", async ({ t }) => {
    await heartbeat(t.app, "draining");
    await heartbeat(t.app, "other");
    const id = await createJobId(t.app);
    const job = await claimJob(t.app, "draining");
    expect((await reportStatus(t.app, job.buffer_job_id, { status: "released", error: null })).json.job_status).toBe("queued");
    expect(await jobRow(t, id)).toMatchObject({ status: "queued", failures: 0, attempts: 1 });
    const next = await claimJob(t.app, "other");
    expect(next.musetalk_job_id).toBe(id);
    // An unrequested "cancelled" is treated the same way.
    expect((await reportStatus(t.app, next.buffer_job_id, { status: "cancelled" })).json.job_status).toBe("queued");
    expect(await jobRow(t, id)).toMatchObject({ status: "queued", failures: 0, attempts: 2 });
  });

  appTest("a job whose lease keeps expiring is failed as poison after MAX_INTERRUPTIONS", async ({ startApp }) => {
    const t = await startApp({ MAX_INTERRUPTIONS: "2" });
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app);
    for (let i = 1; i <= 3; i++) {
      await heartbeat(t.app, "w");
      const job = await claimJob(t.app, "w");
      expect(job.attempt).toBe(i);
      await expireLease(t.db, job.buffer_job_id);
      await runReaperPass(t.db.db, t.config, t.log);
    }
    const row = await jobRow(t, id);
    expect(row).toMatchObject({ status: "failed", interruptions: 3, failures: 0 });
    expect(row?.error_info).toMatchObject({ error_type: "processing_error", retryable: false, details: { interruptions: 3 } });
    expect(t.logs.some((l) => l.includes('"lease_expired_job_failed_poison"'))).toBe(true);
  });
});

describe("lock order", () => {
  appTest(
    "a worker's heartbeats and its own status reports, all at once, never deadlock (every answer is 200)",
    async ({ startApp }) => {
      const t = await startApp({ QUARANTINE_AFTER_FAILURES: "1000" });
      const capacity = 8;
      await heartbeat(t.app, "busy-box", { capacity });
      for (let round = 0; round < 3; round++) {
        const held = [];
        for (let i = 0; i < capacity; i++) {
          await createJobId(t.app);
          held.push(await claimJob(t.app, "busy-box"));
        }
        const active = held.map((a) => a.buffer_job_id);
        // Half fail (each failure writes the worker's streak), half succeed, while the worker
        // keeps heartbeating with active_jobs (each beat locks the worker, then renews attempts).
        const answers = await Promise.all([
          ...held.map((a, i) =>
            reportStatus(t.app, a.buffer_job_id, i % 2 === 0
              ? { status: "failed", error: "boom", error_info: { error_type: "processing_error", stage: "inference", message: "boom", retryable: false } }
              : { status: "succeeded", output_url: `https://93.184.216.34/${a.buffer_job_id}.mp4` }),
          ),
          ...Array.from({ length: 16 }, () => heartbeat(t.app, "busy-box", { status: "busy", capacity, active_jobs: active })),
        ]);
        expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      }
    },
  );
});

const SUCCESS = { status: "succeeded", output_url: "https://93.184.216.34/late.mp4", metrics: { total_time: 3 }, error: null };
const FAILURE = { status: "failed", error: "CUDA error", error_info: { error_type: "processing_error", stage: "inference", message: "CUDA error", retryable: true } };

/** Everything a report or a reap could change about one job, its attempts and its worker. */
async function jobState(t: TestApp, jobId: string) {
  const [state] = await queryRows<{
    job: Record<string, unknown>;
    attempts: Record<string, unknown>[];
    hooks: number;
    streaks: number;
  }>(
    t.db.db,
    sql`select (select jsonb_build_object('status', status, 'attempts', attempts, 'failures', failures,
                                          'interruptions', interruptions, 'buffer_job_id', buffer_job_id,
                                          'output_url', output_url, 'worker_id', worker_id)
                  from jobs where id = ${jobId}) as job,
               (select coalesce(jsonb_agg(jsonb_build_object('id', buffer_job_id, 'status', status) order by attempt), '[]')
                  from buffer_jobs where job_id = ${jobId}) as attempts,
               (select count(*)::int from webhook_deliveries where job_id = ${jobId}) as hooks,
               (select coalesce(sum(consecutive_failures), 0)::int from buffer_workers) as streaks`,
  );
  return state!;
}

/** Waits until some backend of this database is blocked on a row lock (the report queued behind the reaper). */
async function waitForLockWaiter(t: TestApp): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const [row] = await queryRows<{ n: number }>(
      t.db.db,
      sql`select count(*)::int as n from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock'`,
    );
    if ((row?.n ?? 0) > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no backend ever waited on a lock");
}

describe("fencing: reports from an attempt that no longer holds its job", () => {
  appTest("a superseded attempt (its job was reaped and claimed again) gets lease_lost for success and failure, and changes nothing", async ({ t }) => {
    await heartbeat(t.app, "old");
    await heartbeat(t.app, "new");
    const id = await createJobId(t.app, { webhook_url: "https://93.184.216.34/hook" });
    const first = await claimJob(t.app, "old");
    await expireLease(t.db, first.buffer_job_id);
    await runReaperPass(t.db.db, t.config, t.log);
    const second = await claimJob(t.app, "new");
    expect(second.musetalk_job_id).toBe(id);

    const before = await snapshotTables(t.db);
    for (const body of [SUCCESS, FAILURE, { status: "released" }, { status: "cancelled" }]) {
      const res = await reportStatus(t.app, first.buffer_job_id, body);
      expect([res.status, res.error?.code], JSON.stringify(body)).toEqual([409, "lease_lost"]);
    }
    expect(await snapshotTables(t.db)).toBe(before);
    // The current holder is unaffected and completes normally.
    expect((await reportStatus(t.app, second.buffer_job_id, SUCCESS)).json.job_status).toBe("succeeded");
  });

  appTest("an expired attempt the reaper already requeued gets lease_lost, and the job stays queued with one interruption", async ({ t }) => {
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app);
    const held = await claimJob(t.app, "w");
    await expireLease(t.db, held.buffer_job_id);
    await runReaperPass(t.db.db, t.config, t.log);
    const before = await snapshotTables(t.db);
    for (const body of [SUCCESS, FAILURE]) {
      const res = await reportStatus(t.app, held.buffer_job_id, body);
      expect([res.status, res.error?.code]).toEqual([409, "lease_lost"]);
    }
    expect(await snapshotTables(t.db)).toBe(before);
    expect((await jobState(t, id)).job).toMatchObject({ status: "queued", interruptions: 1, failures: 0, buffer_job_id: null });
  });

  appTest("the reaper first, the late report second (queued behind the reaper's locks): the job is requeued once and the report gets lease_lost", async ({ t }) => {
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app, { webhook_url: "https://93.184.216.34/hook" });
    const held = await claimJob(t.app, "w");
    await expireLease(t.db, held.buffer_job_id);
    let report: ReturnType<typeof reportStatus> | undefined;
    // The reaper's statement runs inside an open transaction: it holds the attempt and job locks
    // while the report arrives and waits on them; the report decides only after the commit.
    await t.db.db.transaction(async (tx) => {
      const reaped = await reapExpiredLeases(tx, t.config.MAX_INTERRUPTIONS);
      expect(reaped.map((r) => r.buffer_job_id)).toEqual([held.buffer_job_id]);
      report = reportStatus(t.app, held.buffer_job_id, SUCCESS);
      await waitForLockWaiter(t);
    });
    const res = await report!;
    expect([res.status, res.error?.code]).toEqual([409, "lease_lost"]);
    const state = await jobState(t, id);
    expect(state.job).toMatchObject({ status: "queued", interruptions: 1, failures: 0, output_url: null });
    expect(state.attempts).toEqual([{ id: held.buffer_job_id, status: "interrupted" }]);
    expect(state.hooks).toBe(0);
  });

  appTest("the report first (holding the attempt while the reaper runs), the reaper second: the report wins and the reaper skips and then ignores it", async ({ t }) => {
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app, { webhook_url: "https://93.184.216.34/hook" });
    const held = await claimJob(t.app, "w");
    await expireLease(t.db, held.buffer_job_id);
    // A report mid-transaction holds the attempt's row lock: the reaper skips that attempt.
    await t.db.db.transaction(async (tx) => {
      await tx.execute(sql`select 1 from buffer_jobs where buffer_job_id = ${held.buffer_job_id} for update`);
      expect(await reapExpiredLeases(t.db.db, t.config.MAX_INTERRUPTIONS)).toEqual([]);
    });
    expect((await reportStatus(t.app, held.buffer_job_id, SUCCESS)).json.job_status).toBe("succeeded");
    expect(await reapExpiredLeases(t.db.db, t.config.MAX_INTERRUPTIONS)).toEqual([]);
    const state = await jobState(t, id);
    expect(state.job).toMatchObject({ status: "succeeded", interruptions: 0, output_url: SUCCESS.output_url });
    expect(state.attempts).toEqual([{ id: held.buffer_job_id, status: "succeeded" }]);
    expect(state.hooks).toBe(1);
  });

  appTest("late reports racing the reaper, many times over: each race has exactly one outcome, never both", async ({ startApp }) => {
    const t = await startApp({ QUARANTINE_AFTER_FAILURES: "1000", DATABASE_POOL_MAX: "8" });
    await heartbeat(t.app, "racer", { capacity: 4 });
    const outcomes = { report: 0, reaper: 0 };
    for (let round = 0; round < 12; round++) {
      const id = await createJobId(t.app, { webhook_url: "https://93.184.216.34/hook" });
      await heartbeat(t.app, "racer", { capacity: 4 });
      const held = await claimJob(t.app, "racer");
      await expireLease(t.db, held.buffer_job_id);
      const body = round % 2 === 0 ? SUCCESS : { ...FAILURE, error_info: { ...FAILURE.error_info, retryable: false } };
      const [res] = await Promise.all([reportStatus(t.app, held.buffer_job_id, body), runReaperPass(t.db.db, t.config, t.log)]);
      await runReaperPass(t.db.db, t.config, t.log);
      const state = await jobState(t, id);
      if (res.status === 200) {
        outcomes.report++;
        const final = body.status === "succeeded" ? "succeeded" : "failed";
        expect(state.job).toMatchObject({ status: final, interruptions: 0 });
        expect(state.attempts).toEqual([{ id: held.buffer_job_id, status: final }]);
        expect(state.hooks).toBe(1);
      } else {
        outcomes.reaper++;
        expect([res.status, res.error?.code]).toEqual([409, "lease_lost"]);
        expect(state.job).toMatchObject({ status: "queued", interruptions: 1, failures: 0 });
        expect(state.attempts).toEqual([{ id: held.buffer_job_id, status: "interrupted" }]);
        expect(state.hooks).toBe(0);
        await t.db.db.execute(sql`update jobs set status = 'cancelled', finished_at = now() where id = ${id}`);
      }
    }
    expect(outcomes.report + outcomes.reaper).toBe(12);
  });
});

describe("whose fault a failure is", () => {
  appTest("download failures (input host 5xx or timeouts) retry the job with backoff and never quarantine the worker", async ({ startApp }) => {
    const t = await startApp({ QUARANTINE_AFTER_FAILURES: "2", MAX_ATTEMPTS: "3", RETRY_BACKOFF_BASE_SEC: "50" });
    await heartbeat(t.app, "w");
    const download = {
      status: "failed",
      error: "failed to download video after 3 attempts: HTTP 503",
      error_info: { error_type: "processing_error", stage: "download", message: "failed to download video after 3 attempts: HTTP 503", retryable: true, details: { status_code: 503, attempts: 3 } },
    };
    const typed = { status: "failed", error: "input timed out", error_info: { error_type: "download_error", stage: "download", message: "input timed out", retryable: true } };
    const ids = [await createJobId(t.app), await createJobId(t.app), await createJobId(t.app)];
    for (const [i, body] of [download, typed, download].entries()) {
      const job = await claimJob(t.app, "w");
      expect(job.musetalk_job_id).toBe(ids[i]);
      expect((await reportStatus(t.app, job.buffer_job_id, body)).json.job_status).toBe("queued");
      const row = await jobRow(t, ids[i]!);
      expect(row).toMatchObject({ status: "queued", failures: 1 });
      expect(row!.delay_sec).toBeGreaterThan(45);
    }
    const [worker] = await queryRows<{ consecutive_failures: number; quarantined_until: string | null }>(
      t.db.db,
      sql`select consecutive_failures, quarantined_until from buffer_workers where worker_id = 'w'`,
    );
    expect(worker).toEqual({ consecutive_failures: 0, quarantined_until: null });
    // A download that failed because this box's disk is full is the worker's.
    await createJobId(t.app, { priority: 10 });
    const job = await claimJob(t.app, "w");
    await reportStatus(t.app, job.buffer_job_id, {
      status: "failed",
      error: "ENOSPC",
      error_info: { error_type: "processing_error", stage: "download", message: "ENOSPC: no space left on device", retryable: true, details: { code: "ENOSPC" } },
    });
    const [after] = await queryRows<{ consecutive_failures: number }>(t.db.db, sql`select consecutive_failures from buffer_workers where worker_id = 'w'`);
    expect(after?.consecutive_failures).toBe(1);
  });

  appTest("an original worker's 422 from /generate fails the job at once as a media error and never counts against the worker", async ({ startApp }) => {
    const t = await startApp({ QUARANTINE_AFTER_FAILURES: "1" });
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app);
    const job = await claimJob(t.app, "w");
    const error =
      "HTTPStatusError(\"Client error '422 Unprocessable Entity' for url 'http://localhost:8000/generate'\\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/422\")";
    expect((await reportStatus(t.app, job.buffer_job_id, { status: "failed", error, output_url: null, metrics: null })).json.job_status).toBe("failed");
    const row = await jobRow(t, id);
    expect(row).toMatchObject({ status: "failed", failures: 1, error });
    expect(row?.error_info).toMatchObject({ error_type: "media_error", retryable: false, details: { http_status: 422 } });
    expect((await claim(t.app, "w")).json.reason).toBe("no_job");
  });
});
