import type { ListWorkersResponse, MainClaimJobResponse, ProgressReportResponse } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { runReaperPass } from "../reaper.js";
import {
  ageHeartbeat,
  appTest,
  call,
  claimJob,
  createJobId,
  getJobView,
  heartbeat,
  mainHeartbeat,
  originalHeartbeat,
  reportStatus,
  snapshotTables,
  type TestApp,
} from "../test-support/harness.js";

const OPERATORS_QUERY = sql`SELECT worker_id, last_heartbeat, status FROM buffer_workers ORDER BY last_heartbeat DESC;`;

async function lease(t: TestApp, bufferJobId: string) {
  const [row] = await queryRows<{ legacy_lease: boolean; ttl: number; status: string }>(
    t.db.db,
    sql`select legacy_lease, extract(epoch from lease_expires_at - now())::float8 as ttl, status
          from buffer_jobs where buffer_job_id = ${bufferJobId}`,
  );
  return row!;
}

async function workerStatus(t: TestApp, workerId: string): Promise<string | undefined> {
  const rows = await queryRows<{ worker_id: string; status: string }>(t.db.db, OPERATORS_QUERY);
  return rows.find((r) => r.worker_id === workerId)?.status;
}

function progress(t: TestApp, jobId: string, body: Record<string, unknown>) {
  return call<ProgressReportResponse>(t.app, "POST", `/internal/jobs/${jobId}/progress`, { body });
}

describe("original buffer workers on the Fleet orchestrator", () => {
  appTest("its attempt gets the legacy lease while a Fleet worker's keeps LEASE_TTL_SEC, and the operators' query shows it busy, never offline, while the lease lives", async ({ startApp }) => {
    const t = await startApp({ LEASE_TTL_SEC: "2", WORKER_OFFLINE_AFTER_SEC: "2", LEGACY_LEASE_TTL_SEC: "600" });
    await originalHeartbeat(t.app, "buffer-local-unified-1");
    await heartbeat(t.app, "fleet-box");
    await createJobId(t.app);
    await createJobId(t.app);
    const legacy = await claimJob(t.app, "buffer-local-unified-1");
    const fleet = await claimJob(t.app, "fleet-box");
    expect(await lease(t, legacy.buffer_job_id)).toMatchObject({ legacy_lease: true, status: "running" });
    expect((await lease(t, legacy.buffer_job_id)).ttl).toBeGreaterThan(590);
    expect(await lease(t, fleet.buffer_job_id)).toMatchObject({ legacy_lease: false });
    expect((await lease(t, fleet.buffer_job_id)).ttl).toBeLessThanOrEqual(2);
    expect(await workerStatus(t, "buffer-local-unified-1")).toBe("busy");

    // Both go silent past WORKER_OFFLINE_AFTER_SEC: the original worker runs /generate and sends
    // nothing; the Fleet worker is simply gone.
    await ageHeartbeat(t.db, "buffer-local-unified-1", 60);
    await ageHeartbeat(t.db, "fleet-box", 60);
    await runReaperPass(t.db.db, t.config, t.log);
    expect(await workerStatus(t, "buffer-local-unified-1")).toBe("busy");
    expect(await workerStatus(t, "fleet-box")).toBe("offline");
    const listed = (await call<ListWorkersResponse>(t.app, "GET", "/internal/buffer/workers")).json.workers;
    expect(listed.find((w) => w.worker_id === "buffer-local-unified-1")).toMatchObject({ status: "busy", online: true, protocol: "original", tier: "buffer" });
    expect(listed.find((w) => w.worker_id === "fleet-box")).toMatchObject({ status: "offline", online: false, protocol: "fleet" });

    // Its success report long after LEASE_TTL_SEC is applied.
    expect((await reportStatus(t.app, legacy.buffer_job_id, { status: "succeeded", output_url: "https://93.184.216.34/file/b/o.mp4", metrics: {}, error: null })).json.job_status).toBe("succeeded");
    // With its legacy lease gone the silent worker reads offline like any other.
    await runReaperPass(t.db.db, t.config, t.log);
    expect(await workerStatus(t, "buffer-local-unified-1")).toBe("offline");
  });

  appTest("progress from its /generate under another worker id is accepted and renews the legacy lease; its status stays fenced", async ({ startApp }) => {
    const t = await startApp({ LEGACY_LEASE_TTL_SEC: "100" });
    await originalHeartbeat(t.app, "buffer-box");
    const id = await createJobId(t.app);
    const held = await claimJob(t.app, "buffer-box");
    await t.db.db.execute(sql`update buffer_jobs set lease_expires_at = now() + interval '5 seconds' where buffer_job_id = ${held.buffer_job_id}`);
    // /generate reports under WORKER_ID (or the container's hostname), not BUFFER_WORKER_ID.
    const res = await progress(t, id, { status: "running", progress: 0.1, phase: "inference", worker_id: "a1b2c3d4e5f6", config_label: "default", batch_size: 8 });
    expect(res.json).toEqual({ detail: "ok", progress: 0.1 });
    expect((await lease(t, held.buffer_job_id)).ttl).toBeGreaterThan(90);
    // Monotonic: an out-of-order report does not move it back.
    expect((await progress(t, id, { progress: 0.05, worker_id: "a1b2c3d4e5f6" })).json.progress).toBe(0.1);
    expect((await getJobView(t.app, id)).progress).toBe(0.1);
    // Another attempt's id on /status is still refused.
    const stranger = "00000000-0000-4000-8000-000000000001";
    expect((await reportStatus(t.app, stranger, { status: "succeeded", output_url: "https://93.184.216.34/x.mp4" })).status).toBe(404);
  });

  appTest("progress without buffer_job_id for a job a Fleet worker holds is still refused from another id", async ({ t }) => {
    await heartbeat(t.app, "fleet-box");
    const id = await createJobId(t.app);
    await claimJob(t.app, "fleet-box");
    const before = await snapshotTables(t.db);
    const res = await progress(t, id, { progress: 0.5, worker_id: "someone-else" });
    expect([res.status, res.error?.code]).toEqual([409, "lease_lost"]);
    expect(await snapshotTables(t.db)).toBe(before);
  });

  appTest("its idle heartbeat after a lost status report ends the attempt at once, and the reaper requeues the job", async ({ t }) => {
    await originalHeartbeat(t.app, "buffer-box");
    const id = await createJobId(t.app);
    const held = await claimJob(t.app, "buffer-box");
    // A busy beat (a variant that sends one) keeps it; the loop's idle beat between jobs ends it.
    await originalHeartbeat(t.app, "buffer-box", "busy");
    expect((await lease(t, held.buffer_job_id)).ttl).toBeGreaterThan(600);
    await originalHeartbeat(t.app, "buffer-box");
    expect((await lease(t, held.buffer_job_id)).ttl).toBeLessThanOrEqual(0);
    await runReaperPass(t.db.db, t.config, t.log);
    expect(await getJobView(t.app, id)).toMatchObject({ status: "queued", attempts: 1 });
    // The late report of that attempt is fenced.
    expect((await reportStatus(t.app, held.buffer_job_id, { status: "failed", error: "ReadTimeout('')" })).error?.code).toBe("lease_lost");
  });
});

describe("the original main tier (unified_worker.py)", () => {
  appTest("heartbeat, claim without buffer_job_id, heartbeats naming the job renew its lease, final success on /progress (idempotent)", async ({ startApp }) => {
    const t = await startApp({ LEASE_TTL_SEC: "30" });
    expect((await mainHeartbeat(t.app, "salad-node-7")).json).toEqual({ detail: "ok" });
    const id = await createJobId(t.app);
    const claimed = await call<MainClaimJobResponse>(t.app, "POST", "/internal/main/jobs/claim", {
      body: { worker_id: "salad-node-7", worker_type: "main", gpu_class: "RTX 4090 (24 GB)" },
    });
    expect(claimed.status).toBe(200);
    expect(claimed.json.job).toMatchObject({ musetalk_job_id: id, aspect_ratio: "9:16", resolution: "720p" });
    expect(claimed.json.job).not.toHaveProperty("buffer_job_id");
    const [attempt] = await queryRows<{ buffer_job_id: string }>(t.db.db, sql`select buffer_job_id from buffer_jobs where job_id = ${id}`);
    expect(await lease(t, attempt!.buffer_job_id)).toMatchObject({ legacy_lease: false });

    await t.db.db.execute(sql`update buffer_jobs set lease_expires_at = now() + interval '3 seconds'`);
    await mainHeartbeat(t.app, "salad-node-7", { status: "busy", current_job_id: id });
    expect((await lease(t, attempt!.buffer_job_id)).ttl).toBeGreaterThan(25);
    const listed = (await call<ListWorkersResponse>(t.app, "GET", "/internal/buffer/workers")).json.workers;
    expect(listed[0]).toMatchObject({ worker_id: "salad-node-7", tier: "main", protocol: "original", status: "busy", gpu_class: "RTX 4090 (24 GB)" });
    expect(listed[0]?.system).toMatchObject({ provider: "salad", cpu_cores_logical: 8 });

    // Running progress, then the final report with the fields unified_worker.py sends.
    expect((await progress(t, id, { status: "running", progress: 0.05, phase: "downloading", worker_id: "salad-node-7", metrics: null, error: null })).status).toBe(200);
    const final = { status: "succeeded", progress: 1, phase: "completed", worker_id: "salad-node-7", metrics: { total_time: 41.5 }, error: null, output_url: "https://93.184.216.34/file/talking-avatar/o.mp4" };
    expect((await progress(t, id, final)).json).toEqual({ detail: "ok", progress: 1, job_status: "succeeded" });
    const after = await snapshotTables(t.db);
    expect((await progress(t, id, final)).json).toEqual({ detail: "ok", progress: 1, job_status: "succeeded" });
    expect(await snapshotTables(t.db)).toBe(after);
    expect(await getJobView(t.app, id)).toMatchObject({ status: "succeeded", output_url: final.output_url, metrics: { total_time: 41.5 }, worker_id: "salad-node-7" });
    expect((await call<MainClaimJobResponse>(t.app, "POST", "/internal/main/jobs/claim", { body: { worker_id: "salad-node-7", worker_type: "main", gpu_class: "x" } })).json.job).toBeNull();
  });

  appTest("a main-tier final report is fenced: from another worker, or after its lease was reaped, it gets lease_lost and changes nothing", async ({ t }) => {
    await mainHeartbeat(t.app, "main-a");
    await mainHeartbeat(t.app, "main-b");
    const id = await createJobId(t.app);
    await call(t.app, "POST", "/internal/main/jobs/claim", { body: { worker_id: "main-a", worker_type: "main", gpu_class: "x" } });
    const success = { status: "succeeded", progress: 1, phase: "completed", metrics: null, error: null, output_url: "https://93.184.216.34/o.mp4" };
    let before = await snapshotTables(t.db);
    const fromB = await progress(t, id, { ...success, worker_id: "main-b" });
    expect([fromB.status, fromB.error?.code]).toEqual([409, "lease_lost"]);
    expect(await snapshotTables(t.db)).toBe(before);
    const noUrl = await progress(t, id, { ...success, output_url: null, worker_id: "main-a" });
    expect([noUrl.status, noUrl.error?.code]).toEqual([422, "output_url_required"]);

    // main-a stops heartbeating; its lease is reaped and main-b takes the job.
    await t.db.db.execute(sql`update buffer_jobs set lease_expires_at = now() - interval '1 second'`);
    await runReaperPass(t.db.db, t.config, t.log);
    await mainHeartbeat(t.app, "main-b");
    expect((await call<MainClaimJobResponse>(t.app, "POST", "/internal/main/jobs/claim", { body: { worker_id: "main-b", worker_type: "main", gpu_class: "x" } })).json.job?.attempt).toBe(2);
    before = await snapshotTables(t.db);
    const late = await progress(t, id, { status: "failed", progress: 0, phase: "failed", worker_id: "main-a", error: "ReadTimeout: timed out", metrics: null });
    expect([late.status, late.error?.code]).toEqual([409, "lease_lost"]);
    expect(await snapshotTables(t.db)).toBe(before);

    // main-b's failure quoting /generate's 422 body fails the job at once, no quarantine.
    const body = JSON.stringify({ status: "failed", error_type: "media_error", error_message: "No face detected", stage: "preprocessing", details: {}, retryable: false });
    const failed = await progress(t, id, { status: "failed", progress: 0, phase: "failed", worker_id: "main-b", error: `HTTP 422: ${body}`, metrics: null });
    expect(failed.json).toEqual({ detail: "ok", progress: 0, job_status: "failed" });
    expect((await getJobView(t.app, id)).error_info).toMatchObject({ error_type: "media_error", stage: "preprocessing", message: "No face detected" });
    const [b] = await queryRows<{ consecutive_failures: number }>(t.db.db, sql`select consecutive_failures from buffer_workers where worker_id = 'main-b'`);
    expect(b?.consecutive_failures).toBe(0);
  });
});
