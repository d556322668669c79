import type { ClaimJobResponse, EnrollWorkerResponse, HeartbeatResponse, JobStatusReportResponse, RevokeWorkerTokensResponse } from "@fleet/contract";
import { describe, expect } from "vitest";
import {
  appTest,
  call,
  claimJob,
  createJobId,
  getJobView,
  heartbeat,
  snapshotTables,
  type TestApp,
} from "../test-support/harness.js";

async function enroll(t: TestApp, workerId: string): Promise<string> {
  const res = await call<EnrollWorkerResponse>(t.app, "POST", `/internal/admin/workers/${workerId}/tokens`);
  if (res.status !== 201) throw new Error(`enroll failed: ${res.body}`);
  expect(res.json.token).toMatch(/^fw_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
  expect(res.json.worker_token).toMatchObject({ worker_id: workerId, revoked_at: null });
  return res.json.token;
}

/** A request carrying only a worker token (no shared key). */
function withToken(token: string, body?: unknown) {
  return { key: null, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }) };
}

const BEAT = { status: "idle", gpu_class: "RTX 4090", capacity: 1, error: null };

describe("per-worker tokens", () => {
  appTest("a worker token acts only as its own worker: another worker's heartbeat, claim, progress and status get 403 and change no row", async ({ t }) => {
    const tokenA = await enroll(t, "box-a");
    const tokenB = await enroll(t, "box-b");
    // Box A works with its token alone.
    expect((await call<HeartbeatResponse>(t.app, "POST", "/internal/buffer/workers/box-a/heartbeat", withToken(tokenA, BEAT))).status).toBe(200);
    await heartbeat(t.app, "box-b");
    const jobId = await createJobId(t.app);
    const claimed = await call<ClaimJobResponse>(t.app, "POST", "/internal/buffer/jobs/claim", withToken(tokenA, { worker_id: "box-a" }));
    const job = claimed.json.job;
    if (!job) throw new Error(`box-a got no job: ${claimed.body}`);

    const before = await snapshotTables(t.db);
    const attempts = [
      // Heartbeating as A ("draining", or an empty active list) could drop A's jobs.
      call(t.app, "POST", "/internal/buffer/workers/box-a/heartbeat", withToken(tokenB, { ...BEAT, status: "draining", active_jobs: [] })),
      call(t.app, "POST", "/internal/buffer/jobs/claim", withToken(tokenB, { worker_id: "box-a" })),
      call(t.app, "POST", `/internal/jobs/${jobId}/progress`, withToken(tokenB, { progress: 0.9, worker_id: "box-a" })),
      call(t.app, "POST", `/internal/jobs/${jobId}/progress`, withToken(tokenB, { progress: 0.9, worker_id: "box-b", buffer_job_id: job.buffer_job_id })),
      call(t.app, "POST", `/internal/buffer/jobs/${job.buffer_job_id}/status`, withToken(tokenB, { status: "succeeded", output_url: "https://93.184.216.34/forged.mp4" })),
      call(t.app, "POST", `/internal/buffer/jobs/${job.buffer_job_id}/status`, withToken(tokenB, { status: "failed", error: "forged" })),
    ];
    for (const res of await Promise.all(attempts)) {
      expect([res.status, res.error?.code], res.body).toEqual([403, "worker_identity_mismatch"]);
    }
    expect(await snapshotTables(t.db)).toBe(before);

    // A's own reports with its token go through.
    const progress = await call(t.app, "POST", `/internal/jobs/${jobId}/progress`, withToken(tokenA, { progress: 0.5, worker_id: "box-a", buffer_job_id: job.buffer_job_id }));
    expect(progress.status).toBe(200);
    const done = await call<JobStatusReportResponse>(
      t.app,
      "POST",
      `/internal/buffer/jobs/${job.buffer_job_id}/status`,
      withToken(tokenA, { status: "succeeded", output_url: "https://93.184.216.34/real.mp4" }),
    );
    expect([done.status, done.json.job_status]).toEqual([200, "succeeded"]);
    expect((await getJobView(t.app, jobId)).output_url).toBe("https://93.184.216.34/real.mp4");
  });

  appTest("the shared internal key still acts for every worker (the original workers' mode)", async ({ t }) => {
    await enroll(t, "box-a");
    expect((await heartbeat(t.app, "box-a")).status).toBe(200);
    const jobId = await createJobId(t.app);
    const job = await claimJob(t.app, "box-a");
    expect(job.musetalk_job_id).toBe(jobId);
    const res = await call<JobStatusReportResponse>(t.app, "POST", `/internal/buffer/jobs/${job.buffer_job_id}/status`, { body: { status: "failed", error: "boom" } });
    expect(res.status).toBe(200);
  });

  appTest("a revoked worker token is refused with 401, while the worker's other token keeps working", async ({ t }) => {
    const old = await enroll(t, "box-a");
    const rotated = await enroll(t, "box-a");
    const beat = (token: string) => call(t.app, "POST", "/internal/buffer/workers/box-a/heartbeat", withToken(token, BEAT));
    expect((await beat(old)).status).toBe(200);
    const oldPrefix = old.split("_").slice(0, 2).join("_");
    const revoked = await call<RevokeWorkerTokensResponse>(t.app, "POST", "/internal/admin/workers/box-a/tokens/revoke", { body: { prefix: oldPrefix } });
    expect(revoked.status).toBe(200);
    expect(revoked.json.revoked.map((r) => r.prefix)).toEqual([oldPrefix]);
    const refused = await beat(old);
    expect([refused.status, refused.error?.code]).toEqual([401, "unauthorized"]);
    expect((await beat(rotated)).status).toBe(200);
    // Revoking all of them, then again: nothing left is a 404.
    expect((await call(t.app, "POST", "/internal/admin/workers/box-a/tokens/revoke", { body: {} })).status).toBe(200);
    expect((await beat(rotated)).status).toBe(401);
    expect((await call(t.app, "POST", "/internal/admin/workers/box-a/tokens/revoke", { body: {} })).error?.code).toBe("not_found");
    // A token never opens the operators' routes, not even for its own worker.
    const drain = await call(t.app, "POST", "/internal/buffer/workers/box-a/drain", withToken(await enroll(t, "box-a")));
    expect(drain.status).toBe(401);
  });
});
