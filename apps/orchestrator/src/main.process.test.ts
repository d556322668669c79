import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorBody, type ClaimJobResponse, type HeartbeatResponse, type JobStatusReportResponse, type JobView } from "@fleet/contract";
import { startOrchestratorProcess, type OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { startThrowawayPostgres } from "@fleet/testing/postgres-cluster";
import pg from "pg";
import { describe, expect, test } from "vitest";

async function post<T>(o: OrchestratorProcess, path: string, body: unknown): Promise<{ status: number; json: T; error?: ErrorBody["error"] }> {
  const res = await fetch(`${o.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-internal-api-key": o.internalApiKey },
    body: JSON.stringify(body),
  });
  const json: unknown = await res.json();
  return { status: res.status, json: json as T, error: ErrorBody.safeParse(json).data?.error };
}

async function getJob(o: OrchestratorProcess, id: string): Promise<JobView> {
  const res = await fetch(`${o.url}/v1/avatar/jobs/${id}`, { headers: { "x-api-key": o.publicApiKey } });
  return (await res.json()) as JobView;
}

async function waitForStatus(url: string, expected: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
      await res.body?.cancel();
      last = res.status;
      if (last === expected) return;
    } catch {
      last = -1;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} answered ${last}, not ${expected}, within ${timeoutMs} ms`);
}

const job = { video_url: "https://93.184.216.34/v.mp4", audio_url: "https://93.184.216.34/a.wav" };

describe("the orchestrator process", () => {
  test("with DATABASE_URL unset it runs on embedded PGlite, serves a heartbeat and a claim, and keeps its state across a restart", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "fleet-pglite-"));
    let orchestrator: OrchestratorProcess | undefined;
    try {
      // Leases long enough to outlive a slow PGlite start on a loaded machine: this test is about
      // state surviving the restart, not about lease expiry.
      const env = { LEASE_TTL_SEC: "600", WORKER_OFFLINE_AFTER_SEC: "600" };
      orchestrator = await startOrchestratorProcess({ dataDir, env });
      expect(orchestrator.logRecords().find((r) => r.msg === "orchestrator_started")).toMatchObject({ database: "pglite" });
      expect((await post<HeartbeatResponse>(orchestrator, "/internal/buffer/workers/box-1/heartbeat", { status: "idle", gpu_class: "RTX", capacity: 1, error: null })).json.detail).toBe("ok");
      const created = await fetch(`${orchestrator.url}/v1/avatar/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": orchestrator.publicApiKey },
        body: JSON.stringify(job),
      });
      expect(created.status).toBe(201);
      const jobId = ((await created.json()) as { id: string }).id;
      const claimed = (await post<ClaimJobResponse>(orchestrator, "/internal/buffer/jobs/claim", { worker_id: "box-1" })).json.job;
      expect(claimed?.musetalk_job_id).toBe(jobId);
      expect(await orchestrator.stop()).toBe(0);
      expect(orchestrator.logs().some((l) => l.includes('"orchestrator_stopped"'))).toBe(true);

      // Same data dir, new process (same keys): the job, its attempt and the worker are still there.
      orchestrator = await startOrchestratorProcess({ dataDir, env, internalApiKey: orchestrator.internalApiKey, publicApiKey: orchestrator.publicApiKey });
      expect(await getJob(orchestrator, jobId)).toMatchObject({ id: jobId, status: "running", worker_id: "box-1", attempts: 1 });
      const done = await post<JobStatusReportResponse>(orchestrator, `/internal/buffer/jobs/${claimed?.buffer_job_id}/status`, {
        status: "succeeded",
        output_url: "https://93.184.216.34/o.mp4",
      });
      expect(done.json).toEqual({ detail: "ok", job_status: "succeeded" });
      const workers = await fetch(`${orchestrator.url}/internal/buffer/workers`, { headers: { "x-internal-api-key": orchestrator.internalApiKey } });
      expect(((await workers.json()) as { workers: { worker_id: string }[] }).workers.map((w) => w.worker_id)).toEqual(["box-1"]);
      const logText = orchestrator.logs().join("\n");
      expect(logText).not.toContain(orchestrator.internalApiKey);
      expect(logText).not.toContain(orchestrator.publicApiKey);
    } finally {
      await orchestrator?.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test("a bad setting stops it at start with a message naming the variable", async () => {
    await expect(startOrchestratorProcess({ env: { LEASE_TTL_SEC: "soon" } })).rejects.toThrow(/LEASE_TTL_SEC/);
  });

  test("PostgreSQL restarted under a running orchestrator: /readyz and the API answer 503 while it is down and recover by themselves", async () => {
    const cluster = await startThrowawayPostgres();
    let orchestrator: OrchestratorProcess | undefined;
    try {
      // This test beats by hand, rarely: long windows keep the worker online throughout.
      orchestrator = await startOrchestratorProcess({ databaseUrl: cluster.url, env: { WORKER_OFFLINE_AFTER_SEC: "120", LEASE_TTL_SEC: "120" } });
      expect((await post(orchestrator, "/internal/buffer/workers/box-1/heartbeat", { status: "idle" })).status).toBe(200);
      // A long-polling claim is waiting across the outage.
      const waiting = post<ClaimJobResponse>(orchestrator, "/internal/buffer/jobs/claim", { worker_id: "box-1", wait_ms: 30_000 });

      await cluster.stop();
      // The held claim re-checks the queue while it waits: with the database gone it answers a
      // retryable 503 (the worker claims again later), never a hang, a 500 or a job.
      const held = await waiting;
      expect(held.status, JSON.stringify(held.json ?? held.error)).toBe(503);
      expect(held.error?.code).toBe("service_unavailable");
      await waitForStatus(`${orchestrator.url}/readyz`, 503);
      const down = await post(orchestrator, "/internal/buffer/workers/box-1/heartbeat", { status: "idle" });
      // Not a bug to page anyone about: the worker is told to retry shortly.
      expect(down.status).toBe(503);
      expect(down.error?.code).toBe("service_unavailable");

      await cluster.start();
      await waitForStatus(`${orchestrator.url}/readyz`, 200);
      // The pool and the LISTEN connection recovered without a restart: heartbeats work and a
      // new job still wakes a long-polling claim.
      expect((await post(orchestrator, "/internal/buffer/workers/box-1/heartbeat", { status: "idle" })).status).toBe(200);
      const poll = post<ClaimJobResponse>(orchestrator, "/internal/buffer/jobs/claim", { worker_id: "box-1", wait_ms: 20_000 });
      await new Promise((r) => setTimeout(r, 300));
      const created = await fetch(`${orchestrator.url}/v1/avatar/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": orchestrator.publicApiKey },
        body: JSON.stringify(job),
      });
      expect(created.status).toBe(201);
      const polled = await poll;
      expect(polled.json.job, JSON.stringify(polled.json)).not.toBeNull();
      // The same process throughout: it started once and never exited.
      expect(orchestrator.logs().filter((l) => l.includes('"orchestrator_started"'))).toHaveLength(1);
      expect(orchestrator.logs().some((l) => l.includes('"db_listener_reconnected"'))).toBe(true);
    } finally {
      await orchestrator?.stop();
      await cluster.destroy();
    }
  }, 120_000);

  test("a database connection killed in the middle of a status report's transaction fails that request, not the process", async () => {
    const cluster = await startThrowawayPostgres();
    let orchestrator: OrchestratorProcess | undefined;
    const admin = new pg.Client({ connectionString: cluster.url });
    try {
      orchestrator = await startOrchestratorProcess({ databaseUrl: cluster.url });
      await post(orchestrator, "/internal/buffer/workers/w1/heartbeat", { status: "idle" });
      const created = await fetch(`${orchestrator.url}/v1/avatar/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": orchestrator.publicApiKey },
        body: JSON.stringify(job),
      });
      expect(created.status).toBe(201);
      const attempt = (await post<ClaimJobResponse>(orchestrator, "/internal/buffer/jobs/claim", { worker_id: "w1" })).json.job;
      expect(attempt).not.toBeNull();

      // Hold the attempt row so the report's transaction waits with its client checked out...
      await admin.connect();
      await admin.query("begin");
      await admin.query("select 1 from buffer_jobs where buffer_job_id = $1 for update", [attempt?.buffer_job_id]);
      // A failure report always runs as a transaction (a success may take a one-statement path).
      const failure = {
        status: "failed",
        error: "inference exited 1",
        error_info: { error_type: "processing_error", stage: "inference", message: "inference exited 1", retryable: false },
      };
      const report = post(orchestrator, `/internal/buffer/jobs/${attempt?.buffer_job_id}/status`, failure);
      let waiting: number | undefined;
      for (let i = 0; i < 100 && waiting === undefined; i++) {
        const { rows } = await admin.query<{ pid: number }>(
          "select pid from pg_stat_activity where wait_event_type = 'Lock' and pid <> pg_backend_pid()",
        );
        waiting = rows[0]?.pid;
        if (waiting === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(waiting).toBeDefined();
      // ...then end that backend, as a failover or an operator's pg_terminate_backend does.
      await admin.query("select pg_terminate_backend($1)", [waiting]);
      expect((await report).status).toBe(503);
      await admin.query("rollback");

      const health = await fetch(`${orchestrator.url}/healthz`);
      expect(health.status).toBe(200);
      expect(orchestrator.logs().some((l) => l.includes('"db_client_connection_lost"'))).toBe(true);
      // The report can simply be sent again, on a healthy connection.
      const retried = await post<JobStatusReportResponse>(orchestrator, `/internal/buffer/jobs/${attempt?.buffer_job_id}/status`, failure);
      expect(retried.json).toEqual({ detail: "ok", job_status: "failed" });
    } finally {
      await admin.end().catch(() => undefined);
      await orchestrator?.stop();
      await cluster.destroy();
    }
  }, 120_000);
});
