import type { JobView } from "@fleet/contract";
import { startOrchestratorProcess, type OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { startOriginalBufferWorker, startOriginalMainWorker, type OriginalWorkerProcess } from "@fleet/testing/original-worker-process";
import pg from "pg";
import { describe, expect } from "vitest";
import { dbTest } from "../test-support/harness.js";

/**
 * The original Python workers' stand-ins (packages/testing/original-workers) against the real
 * orchestrator process on PostgreSQL, on default settings unless a test says why it changes one.
 * Inputs are never fetched (the stand-ins' /generate does not download), so the URLs are loopback.
 */

const INPUTS = { video_url: "http://127.0.0.1:9/avatar.mp4", audio_url: "http://127.0.0.1:9/voice.wav", aspect_ratio: "9:16", resolution: "720p" };

async function submit(o: OrchestratorProcess): Promise<string> {
  const res = await fetch(`${o.url}/v1/avatar/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": o.publicApiKey },
    body: JSON.stringify(INPUTS),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as JobView).id;
}

async function getJob(o: OrchestratorProcess, id: string): Promise<JobView> {
  const res = await fetch(`${o.url}/v1/avatar/jobs/${id}`, { headers: { "x-api-key": o.publicApiKey } });
  return (await res.json()) as JobView;
}

async function waitForJob(o: OrchestratorProcess, id: string, accept: (j: JobView) => boolean, timeoutMs = 60_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await getJob(o, id);
    if (accept(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} never reached the expected state; last: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

const OPERATORS_QUERY = "SELECT worker_id, last_heartbeat, status FROM buffer_workers ORDER BY last_heartbeat DESC;";

async function withProcesses(
  databaseUrl: string,
  env: Record<string, string>,
  body: (o: OrchestratorProcess, started: OriginalWorkerProcess[]) => Promise<void>,
): Promise<void> {
  const orchestrator = await startOrchestratorProcess({ databaseUrl, env });
  const started: OriginalWorkerProcess[] = [];
  try {
    await body(orchestrator, started);
  } finally {
    for (const w of started) await w.stop();
    await orchestrator.stop();
  }
}

describe("the original buffer loop on a Fleet orchestrator", () => {
  dbTest(
    "a job longer than the lease succeeds; /generate's progress under WORKER_ID reaches the client; the operators' query shows the worker busy, never offline",
    async ({ databaseUrl }) => {
      // Fleet leases and the offline window at 2 s: the 5 s job outlives both, as a 40 s job would 30 s.
      await withProcesses(databaseUrl, { LEASE_TTL_SEC: "2", WORKER_OFFLINE_AFTER_SEC: "2" }, async (o, started) => {
        const id = await submit(o);
        const worker = await startOriginalBufferWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "buffer-local-unified-1", generateSeconds: 5 });
        started.push(worker);
        await worker.waitFor("generate_started");
        const seen = new Set<string>();
        let maxProgress = 0;
        while (!worker.events().some((e) => e.event === "status_update_response")) {
          const rows = await query<{ worker_id: string; status: string }>(databaseUrl, OPERATORS_QUERY);
          for (const r of rows) if (r.worker_id === "buffer-local-unified-1") seen.add(r.status);
          maxProgress = Math.max(maxProgress, (await getJob(o, id)).progress);
          await new Promise((r) => setTimeout(r, 250));
        }
        expect(seen).toContain("busy");
        expect(seen).not.toContain("offline");
        expect(maxProgress).toBeGreaterThan(0.1);

        const report = await worker.waitFor("status_update_response");
        expect(report.code).toBe(200);
        const progress = worker.events().filter((e) => e.event === "progress_sent");
        expect(progress.length).toBeGreaterThan(3);
        expect(progress.every((e) => e.code === 200 && e.worker_id === "buffer-local-unified-1-container")).toBe(true);
        const job = await getJob(o, id);
        expect(job).toMatchObject({ status: "succeeded", attempts: 1, worker_id: "buffer-local-unified-1" });
        expect(job.output_url).toContain(id);
        // Nothing else happened to it: one attempt, no interruption.
        const attempts = await query<{ status: string; legacy_lease: boolean }>(databaseUrl, "select status, legacy_lease from buffer_jobs where job_id = $1", [id]);
        expect(attempts).toEqual([{ status: "succeeded", legacy_lease: true }]);
      });
    },
  );

  dbTest(
    "failures: /generate's 422 fails each job at once as a media error and never quarantines the worker (key sent as X-Internal-Api-Key)",
    async ({ databaseUrl }) => {
      await withProcesses(databaseUrl, { QUARANTINE_AFTER_FAILURES: "1" }, async (o, started) => {
        const first = await submit(o);
        const second = await submit(o);
        const worker = await startOriginalBufferWorker({
          orchestratorUrl: o.url,
          internalApiKey: o.internalApiKey,
          workerId: "vast-abc",
          outcome: "media_error",
          keyHeader: "X-Internal-Api-Key",
        });
        started.push(worker);
        for (const id of [first, second]) {
          const job = await waitForJob(o, id, (j) => j.status === "failed");
          expect(job.error_info).toMatchObject({ error_type: "media_error", retryable: false });
          expect(job.attempts).toBe(1);
        }
        expect(worker.events().filter((e) => e.event === "heartbeat_sent").every((e) => e.code === 200)).toBe(true);
        const [row] = await query<{ consecutive_failures: number; quarantined_until: Date | null; protocol: string }>(
          databaseUrl,
          "select consecutive_failures, quarantined_until, protocol from buffer_workers where worker_id = 'vast-abc'",
        );
        expect(row).toEqual({ consecutive_failures: 0, quarantined_until: null, protocol: "original" });
      });
    },
  );

  dbTest(
    "a /generate 500 is the worker's: the job is retried with backoff and the streak counts toward quarantine",
    async ({ databaseUrl }) => {
      await withProcesses(databaseUrl, { QUARANTINE_AFTER_FAILURES: "10", MAX_ATTEMPTS: "2", RETRY_BACKOFF_BASE_SEC: "0.5" }, async (o, started) => {
        const id = await submit(o);
        const worker = await startOriginalBufferWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "buffer-2", outcome: "processing_error" });
        started.push(worker);
        const job = await waitForJob(o, id, (j) => j.status === "failed");
        expect(job).toMatchObject({ attempts: 2 });
        expect(job.error_info).toMatchObject({ error_type: "processing_error", retryable: true });
        const [row] = await query<{ consecutive_failures: number }>(databaseUrl, "select consecutive_failures from buffer_workers where worker_id = 'buffer-2'");
        expect(row?.consecutive_failures).toBe(2);
      });
    },
  );

  dbTest(
    "a SIGKILLed original worker: with no restart its job is requeued when the legacy lease runs out; restarted, its first idle heartbeat hands the job back at once",
    async ({ databaseUrl }) => {
      // LEGACY_LEASE_TTL_SEC is shortened only for the no-restart half; the restart half would
      // finish just as fast with the 660 s default (see the README).
      await withProcesses(databaseUrl, { LEGACY_LEASE_TTL_SEC: "3" }, async (o, started) => {
        const id = await submit(o);
        const first = await startOriginalBufferWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "doomed", generateSeconds: 600 });
        started.push(first);
        await first.waitFor("generate_started");
        await first.kill();
        const requeued = await waitForJob(o, id, (j) => j.status === "queued" || j.attempts > 1);
        expect(requeued.attempts).toBe(1);
        const [attempt] = await query<{ status: string }>(databaseUrl, "select status from buffer_jobs where job_id = $1", [id]);
        expect(attempt?.status).toBe("interrupted");
        // The silent worker, its lease gone, reads offline.
        await waitForSql(databaseUrl, "select status from buffer_workers where worker_id = 'doomed'", (r) => r[0]?.status === "offline");

        const survivor = await startOriginalBufferWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "survivor" });
        started.push(survivor);
        expect(await waitForJob(o, id, (j) => j.status === "succeeded")).toMatchObject({ attempts: 2, worker_id: "survivor" });
      });

      await withProcesses(databaseUrl, {}, async (o, started) => {
        const id = await submit(o);
        const first = await startOriginalBufferWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "restarts", generateSeconds: 600 });
        started.push(first);
        await first.waitFor("generate_started");
        await first.kill();
        // Docker's restart policy brings the same container back: same id, a fresh loop.
        const again = await startOriginalBufferWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "restarts" });
        started.push(again);
        const job = await waitForJob(o, id, (j) => j.status === "succeeded");
        expect(job).toMatchObject({ attempts: 2, worker_id: "restarts" });
        const [row] = await query<{ interruptions: number; failures: number }>(databaseUrl, "select interruptions, failures from jobs where id = $1", [id]);
        expect(row).toEqual({ interruptions: 1, failures: 0 });
      });
    },
  );
});

describe("the original main tier on a Fleet orchestrator", () => {
  dbTest(
    "unified_worker.py's loop end to end: heartbeats naming the job keep a job longer than the lease alive, the final report on /progress completes it, a 422 fails the next at once",
    async ({ databaseUrl }) => {
      await withProcesses(databaseUrl, { LEASE_TTL_SEC: "2", WORKER_OFFLINE_AFTER_SEC: "2" }, async (o, started) => {
        const id = await submit(o);
        const worker = await startOriginalMainWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "salad-node-1", generateSeconds: 5 });
        started.push(worker);
        const claimed = await worker.waitFor("job_claimed");
        expect(claimed).toMatchObject({ job_id: id, has_buffer_job_id: false });
        await worker.waitFor("main_heartbeat_sent", { where: (e) => e.current_job_id === id });
        const final = await worker.waitFor("main_report_sent", { where: (e) => e.status === "succeeded", timeoutMs: 60_000 });
        expect(final.code).toBe(200);
        expect(await getJob(o, id)).toMatchObject({ status: "succeeded", attempts: 1, worker_id: "salad-node-1", progress: 1 });
        const [row] = await query<{ tier: string; protocol: string }>(databaseUrl, "select tier, protocol from buffer_workers where worker_id = 'salad-node-1'");
        expect(row).toEqual({ tier: "main", protocol: "original" });
        await worker.stop();

        const bad = await startOriginalMainWorker({ orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "salad-node-2", outcome: "media_error" });
        started.push(bad);
        const second = await submit(o);
        const failed = await waitForJob(o, second, (j) => j.status === "failed");
        expect(failed.error_info).toMatchObject({ error_type: "media_error", stage: "preprocessing", retryable: false });
        expect(failed.attempts).toBe(1);
      });
    },
  );
});

describe("both original loops in one container under one id (the original's local-buffer setup)", () => {
  dbTest("the main-tier loop and the buffer loop share the box's one slot: every job succeeds once, never two at a time", async ({ databaseUrl }) => {
    await withProcesses(databaseUrl, {}, async (o, started) => {
      const ids = [await submit(o), await submit(o), await submit(o), await submit(o)];
      const common = { orchestratorUrl: o.url, internalApiKey: o.internalApiKey, workerId: "buffer-local-unified-1", generateSeconds: 1 };
      started.push(await startOriginalMainWorker(common));
      started.push(await startOriginalBufferWorker({ ...common, env: { WORKER_ID: "buffer-local-unified-1" } }));
      for (const id of ids) expect(await waitForJob(o, id, (j) => j.status === "succeeded")).toMatchObject({ attempts: 1 });
      const attempts = await query<{ claimed_at: Date; finished_at: Date; legacy_lease: boolean }>(
        databaseUrl,
        "select claimed_at, finished_at, legacy_lease from buffer_jobs where worker_id = 'buffer-local-unified-1' order by claimed_at",
      );
      expect(attempts).toHaveLength(4);
      for (let i = 1; i < attempts.length; i++) expect(attempts[i]!.claimed_at.getTime()).toBeGreaterThanOrEqual(attempts[i - 1]!.finished_at.getTime());
      const [row] = await query<{ tier: string }>(databaseUrl, "select tier from buffer_workers where worker_id = 'buffer-local-unified-1'");
      expect(row?.tier).toBe("main");
    });
  });
});

async function waitForSql(url: string, text: string, accept: (rows: Record<string, unknown>[]) => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (accept(await query(url, text))) return;
    if (Date.now() > deadline) throw new Error(`never true: ${text}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
