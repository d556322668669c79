import type { CancelJobResponse, JobView, ListJobsResponse, MainClaimJobResponse } from "@fleet/contract";
import { staticResolver } from "@fleet/egress";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { runReaperPass } from "../reaper.js";
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
  mainHeartbeat,
  PUBLIC_KEY,
  reportStatus,
  snapshotTables,
} from "../test-support/harness.js";

describe("public job API", () => {
  appTest("creating a job returns 201 and the job view, readable by its client and the internal key", async ({ t }) => {
    const created = await createJobViaApi(t.app, { metadata: { client_id: "c1" }, params: { bbox_shift: 5 } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      status: "queued",
      progress: 0,
      output_url: null,
      metrics: null,
      error: null,
      input: { video_url: "https://93.184.216.34/avatar.mp4", audio_url: "https://93.184.216.34/voice.wav", aspect_ratio: "9:16", resolution: "720p", params: { bbox_shift: 5 } },
      metadata: { client_id: "c1" },
      attempts: 0,
      max_attempts: 3,
      worker_id: null,
      started_at: null,
      finished_at: null,
    });
    const id = created.json.id;
    expect((await call<JobView>(t.app, "GET", `/v1/avatar/jobs/${id}`, { key: null, headers: { "x-api-key": PUBLIC_KEY } })).json.id).toBe(id);
    expect((await getJobView(t.app, id)).id).toBe(id);
    const missing = await call(t.app, "GET", "/v1/avatar/jobs/7b0c9a52-7e0e-4c1e-8f6a-111111111111");
    expect([missing.status, missing.error?.code]).toEqual([404, "not_found"]);
  });

  appTest("a repeated Idempotency-Key returns the same job; with another body it is a 409", async ({ t }) => {
    const key = { "idempotency-key": "order-4711" };
    const first = await createJobViaApi(t.app, { metadata: { a: 1, b: 2 } }, key);
    expect(first.status).toBe(201);
    // Same content, keys in another order: the same request.
    const again = await createJobViaApi(t.app, { metadata: { b: 2, a: 1 } }, key);
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(first.json.id);
    const racing = await Promise.all(Array.from({ length: 5 }, () => createJobViaApi(t.app, { metadata: { a: 1, b: 2 } }, key)));
    expect(new Set(racing.map((r) => r.json.id))).toEqual(new Set([first.json.id]));
    const conflict = await createJobViaApi(t.app, { metadata: { a: 2 } }, key);
    expect([conflict.status, conflict.error?.code]).toEqual([409, "idempotency_conflict"]);
    const [count] = await queryRows<{ n: number }>(t.db.db, sql`select count(*)::int as n from jobs`);
    expect(count?.n).toBe(1);
  });

  appTest("the list is newest first, filters by status and pages by cursor without gaps or repeats", async ({ t }) => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await createJobId(t.app));
    // Same created_at for several rows: the id breaks the tie.
    await t.db.db.execute(sql`update jobs set created_at = date_trunc('second', now()) where id in (${ids[2]}, ${ids[3]}, ${ids[4]})`);
    await call(t.app, "DELETE", `/v1/avatar/jobs/${ids[1]}`);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { json: { jobs: { id: string }[]; next_cursor: string | null } } = await call(
        t.app,
        "GET",
        `/v1/avatar/jobs?limit=3${cursor ? `&cursor=${cursor}` : ""}`,
      );
      seen.push(...page.json.jobs.map((j) => j.id));
      cursor = page.json.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(7);
    expect(seen).toHaveLength(7);
    const [order] = await queryRows<{ ids: string[] }>(t.db.db, sql`select array_agg(id::text order by created_at desc, id desc) as ids from jobs`);
    expect(seen).toEqual(order?.ids);

    const cancelled = await call<ListJobsResponse>(t.app, "GET", "/v1/avatar/jobs?status=cancelled");
    expect(cancelled.json.jobs.map((j) => j.id)).toEqual([ids[1]]);
    const bad = await call(t.app, "GET", "/v1/avatar/jobs?cursor=not-a-cursor");
    expect([bad.status, bad.error?.code]).toEqual([400, "invalid_request"]);
  });

  appTest("cancelling a queued job ends it at once; cancelling it again is 409 job_finished", async ({ t }) => {
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app, { webhook_url: "https://93.184.216.34/x" });
    const res = await call<CancelJobResponse>(t.app, "DELETE", `/v1/avatar/jobs/${id}`, { key: null, headers: { "x-api-key": PUBLIC_KEY } });
    expect(res.status).toBe(200);
    expect(res.json.detail).toBe("Job cancelled");
    expect(res.json.job).toMatchObject({ status: "cancelled", cancel_requested: true });
    expect(res.json.job.finished_at).not.toBeNull();
    expect((await claim(t.app, "w")).json.job).toBeNull();
    const again = await call(t.app, "DELETE", `/v1/avatar/jobs/${id}`);
    expect([again.status, again.error?.code]).toEqual([409, "job_finished"]);
    const hooks = await queryRows<{ event: string }>(t.db.db, sql`select event from webhook_deliveries`);
    expect(hooks).toEqual([{ event: "job.cancelled" }]);
  });

  appTest("cancelling a running job asks its worker through the heartbeat; the worker's cancelled report ends it", async ({ t }) => {
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app);
    const job = await claimJob(t.app, "w");
    const res = await call<CancelJobResponse>(t.app, "DELETE", `/v1/avatar/jobs/${id}`);
    expect(res.json.detail).toBe("Cancellation requested");
    expect(res.json.job).toMatchObject({ status: "running", cancel_requested: true });
    expect((await heartbeat(t.app, "w", { status: "busy", active_jobs: [job.buffer_job_id] })).json.cancel).toEqual([job.buffer_job_id]);
    expect((await reportStatus(t.app, job.buffer_job_id, { status: "cancelled", error: "cancelled" })).json.job_status).toBe("cancelled");
    expect((await getJobView(t.app, id)).status).toBe("cancelled");
  });

  appTest("a running job whose worker never acknowledges the cancel is ended when its lease expires", async ({ t }) => {
    await heartbeat(t.app, "w");
    const id = await createJobId(t.app);
    const job = await claimJob(t.app, "w");
    await call(t.app, "DELETE", `/v1/avatar/jobs/${id}`);
    await expireLease(t.db, job.buffer_job_id);
    await runReaperPass(t.db.db, t.config, t.log);
    expect((await getJobView(t.app, id)).status).toBe("cancelled");
    // A failure report racing a cancel also ends as cancelled, never as a retry.
    const id2 = await createJobId(t.app);
    await heartbeat(t.app, "w");
    const job2 = await claimJob(t.app, "w");
    await call(t.app, "DELETE", `/v1/avatar/jobs/${id2}`);
    expect((await reportStatus(t.app, job2.buffer_job_id, { status: "failed", error: "aborted" })).json.job_status).toBe("cancelled");
  });

  appTest("input and webhook URLs on private networks are refused unless allowed, in every spelling, changing no row", async ({ startApp }) => {
    const resolveHost = staticResolver({ "intranet.fleet.internal": ["93.184.216.34", "10.1.2.3"], "meta.fleet.internal": ["fd00::1"] });
    const strict = await startApp({}, { resolveHost });
    const before = await snapshotTables(strict.db);
    for (const body of [
      { video_url: "http://127.0.0.1:9000/v.mp4" },
      { audio_url: "http://[::1]/a.wav" },
      { video_url: "http://localhost./v.mp4" },
      { video_url: "http://[::7f00:1]/v.mp4" },
      { video_url: "http://[::ffff:0:7f00:1]/v.mp4" },
      { video_url: "http://[64:ff9b::a9fe:a9fe]/latest" },
      { video_url: "http://[64:ff9b:1::a9fe:a9fe]/latest" },
      { audio_url: "http://[2002:a9fe:a9fe::]/a.wav" },
      { audio_url: "http://[fec0::1]/a.wav" },
      { video_url: "https://intranet.fleet.internal/v.mp4" },
      { video_url: "https://intranet.fleet.internal./v.mp4" },
      { webhook_url: "https://meta.fleet.internal/hook" },
      { webhook_url: "http://169.254.169.254/latest" },
      { webhook_url: "http://[::ffff:a9fe:a9fe]/latest" },
    ]) {
      const res = await createJobViaApi(strict.app, body);
      expect([res.status, res.error?.code], JSON.stringify(body)).toEqual([422, "url_not_allowed"]);
    }
    expect(await snapshotTables(strict.db)).toBe(before);
    const lax = await startApp({ ALLOW_PRIVATE_NETWORK_URLS: "true" });
    expect((await createJobViaApi(lax.app, { video_url: "http://127.0.0.1:9000/v.mp4" })).status).toBe(201);
    expect((await createJobViaApi(lax.app, { video_url: "http://[::7f00:1]/v.mp4" })).status).toBe(201);
  });

  appTest("video_sha256: kept on the job, shown in its view and carried by both claim routes; absent, nothing changes", async ({ t }) => {
    const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const named = await createJobViaApi(t.app, { video_sha256: hash });
    expect([named.status, named.json.input.video_sha256]).toEqual([201, hash]);
    const plain = await createJobViaApi(t.app);
    expect(plain.json.input.video_sha256).toBeNull();

    await heartbeat(t.app, "hash-box");
    const first = await claimJob(t.app, "hash-box");
    expect([first.musetalk_job_id, first.video_sha256]).toEqual([named.json.id, hash]);
    expect((await getJobView(t.app, named.json.id)).input.video_sha256).toBe(hash);
    // The main tier's claim answers from the same view.
    await mainHeartbeat(t.app, "main-hash-box");
    const main = await call<MainClaimJobResponse>(t.app, "POST", "/internal/main/jobs/claim", { body: { worker_id: "main-hash-box", worker_type: "main", gpu_class: "x" } });
    expect(main.json.job?.musetalk_job_id).toBe(plain.json.id);
    expect(main.json.job).not.toHaveProperty("video_sha256");
  });

  appTest("a video_sha256 that is not 64 lowercase hex digits is a 400 invalid_request and creates no job", async ({ t }) => {
    const before = await snapshotTables(t.db);
    for (const bad of ["9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", "abc", "g".repeat(64), 42, null, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0800"]) {
      const res = await createJobViaApi(t.app, { video_sha256: bad });
      expect([res.status, res.error?.code], JSON.stringify(bad)).toEqual([400, "invalid_request"]);
      expect(JSON.stringify(res.error?.details)).toContain("video_sha256");
    }
    expect(await snapshotTables(t.db)).toBe(before);
  });
});
