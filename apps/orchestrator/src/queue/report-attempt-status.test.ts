import type { ListWorkersResponse } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { runReaperPass } from "../reaper.js";
import {
  call,
  claim,
  claimJob,
  createJobId,
  createJobViaApi,
  dbTest,
  expireLease,
  getJobView,
  heartbeat,
  reportStatus,
  snapshotTables,
  startTestApp,
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
  dbTest("an unknown attempt is 404 and a success without output_url is 422; neither changes anything", async ({ databaseUrl }) => {
    const t = await startTestApp(databaseUrl);
    try {
      await heartbeat(t.app, "w");
      await createJobViaApi(t.app);
      const job = await claimJob(t.app, "w");
      const before = await snapshotTables(t.db);
      const unknown = await reportStatus(t.app, "5f2b8c1e-2d7a-4c1b-9f3e-7a6b5c4d3e2f", { status: "failed", error: "x" });
      expect([unknown.status, unknown.error?.code]).toEqual([404, "not_found"]);
      const noOutput = await reportStatus(t.app, job.buffer_job_id, { status: "succeeded", output_url: null, error: null, metrics: null });
      expect([noOutput.status, noOutput.error?.code]).toEqual([422, "output_url_required"]);
      expect(await snapshotTables(t.db)).toBe(before);
    } finally {
      await t.close();
    }
  });

  dbTest("a failure from an original worker (no error_info) retries with growing backoff, then fails after MAX_ATTEMPTS", async ({ databaseUrl }) => {
    const t = await startTestApp(databaseUrl, { MAX_ATTEMPTS: "3", RETRY_BACKOFF_BASE_SEC: "100" });
    try {
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
    } finally {
      await t.close();
    }
  });

  dbTest("a media error fails the job at once and does not count against the worker", async ({ databaseUrl }) => {
    const t = await startTestApp(databaseUrl);
    try {
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
    } finally {
      await t.close();
    }
  });

  dbTest("a worker failing N jobs in a row is quarantined; a success resets its count", async ({ databaseUrl }) => {
    const t = await startTestApp(databaseUrl, { QUARANTINE_AFTER_FAILURES: "2", QUARANTINE_SEC: "600" });
    try {
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
    } finally {
      await t.close();
    }
  });

  dbTest("released hands the job back at once without counting a failure", async ({ databaseUrl }) => {
    const t = await startTestApp(databaseUrl);
    try {
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
    } finally {
      await t.close();
    }
  });

  dbTest("a job whose lease keeps expiring is failed as poison after MAX_INTERRUPTIONS", async ({ databaseUrl }) => {
    const t = await startTestApp(databaseUrl, { MAX_INTERRUPTIONS: "2" });
    try {
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
    } finally {
      await t.close();
    }
  });
});

describe("lock order", () => {
  dbTest(
    "a worker's heartbeats and its own status reports, all at once, never deadlock (every answer is 200)",
    async ({ databaseUrl }) => {
      const t = await startTestApp(databaseUrl, { QUARANTINE_AFTER_FAILURES: "1000" });
      try {
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
      } finally {
        await t.close();
      }
    },
  );
});
