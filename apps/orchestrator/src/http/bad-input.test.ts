import { expect } from "vitest";
import {
  appTest,
  call,
  claimJob,
  createJobId,
  createJobViaApi,
  heartbeat,
  INTERNAL_KEY,
  PUBLIC_KEY,
  snapshotTables,
} from "../test-support/harness.js";

interface Case {
  name: string;
  method: "GET" | "POST" | "DELETE";
  url: string;
  body?: unknown;
  /** Raw payload with its own content type (malformed JSON, text, oversized). */
  raw?: { payload: string; contentType: string };
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const HUGE = "x".repeat(300 * 1024);
const UNKNOWN_UUID = "9e8d7c6b-5a49-4838-a727-161514131211";

appTest("a table of malformed requests across the routes: each gets its 4xx and stable code, never a 5xx, and no row changes", async ({ t }) => {
  // State the bad requests could damage: a worker, a queued job and a running attempt.
  await heartbeat(t.app, "w1");
  await heartbeat(t.app, "w2");
  await createJobViaApi(t.app);
  const running = await claimJob(t.app, "w1");
  const queuedId = await createJobId(t.app);
  const hb = (w: string) => `/internal/buffer/workers/${w}/heartbeat`;
  const status = `/internal/buffer/jobs/${running.buffer_job_id}/status`;
  const progress = `/internal/jobs/${running.musetalk_job_id}/progress`;
  const job = { video_url: "https://93.184.216.34/v.mp4", audio_url: "https://93.184.216.34/a.wav" };

  const cases: Case[] = [
    // heartbeat
    { name: "unknown heartbeat status", method: "POST", url: hb("w1"), body: { status: "sleeping" }, status: 400, code: "invalid_request" },
    { name: "offline is not a status a worker may send", method: "POST", url: hb("w1"), body: { status: "offline" }, status: 400, code: "invalid_request" },
    { name: "capacity as a string", method: "POST", url: hb("w1"), body: { status: "idle", capacity: "two" }, status: 400, code: "invalid_request" },
    { name: "capacity zero", method: "POST", url: hb("w1"), body: { status: "idle", capacity: 0 }, status: 400, code: "invalid_request" },
    { name: "heartbeat without status", method: "POST", url: hb("w1"), body: { gpu_class: "x" }, status: 400, code: "invalid_request" },
    { name: "active_jobs with a non-uuid", method: "POST", url: hb("w1"), body: { status: "busy", active_jobs: ["nope"] }, status: 400, code: "invalid_request" },
    { name: "worker id with a space", method: "POST", url: hb("bad%20id"), body: { status: "idle" }, status: 400, code: "invalid_request" },
    { name: "body is a JSON array", method: "POST", url: hb("w1"), body: [1, 2], status: 400, code: "invalid_request" },
    { name: "truncated JSON", method: "POST", url: hb("w1"), raw: { payload: '{"status":', contentType: "application/json" }, status: 400, code: "invalid_request" },
    { name: "empty JSON body", method: "POST", url: hb("w1"), raw: { payload: "", contentType: "application/json" }, status: 400, code: "invalid_request" },
    { name: "text/plain body", method: "POST", url: hb("w1"), raw: { payload: "status=idle", contentType: "text/plain" }, status: 415, code: "unsupported_media_type" },
    { name: "form-encoded body", method: "POST", url: hb("w1"), raw: { payload: "status=idle", contentType: "application/x-www-form-urlencoded" }, status: 415, code: "unsupported_media_type" },
    { name: "oversized heartbeat", method: "POST", url: hb("w1"), raw: { payload: JSON.stringify({ status: "idle", pad: HUGE }), contentType: "application/json" }, status: 413, code: "payload_too_large" },
    // claim
    { name: "claim without worker_id", method: "POST", url: "/internal/buffer/jobs/claim", body: {}, status: 400, code: "invalid_request" },
    { name: "claim wait_ms above 30 s", method: "POST", url: "/internal/buffer/jobs/claim", body: { worker_id: "w2", wait_ms: 60_000 }, status: 400, code: "invalid_request" },
    { name: "claim negative wait_ms", method: "POST", url: "/internal/buffer/jobs/claim", body: { worker_id: "w2", wait_ms: -1 }, status: 400, code: "invalid_request" },
    { name: "claim worker_id as a number", method: "POST", url: "/internal/buffer/jobs/claim", body: { worker_id: 42 }, status: 400, code: "invalid_request" },
    // status
    { name: "status for a malformed buffer_job_id", method: "POST", url: "/internal/buffer/jobs/not-a-uuid/status", body: { status: "failed" }, status: 400, code: "invalid_request" },
    { name: "unknown status value", method: "POST", url: status, body: { status: "done" }, status: 400, code: "invalid_request" },
    { name: "status missing", method: "POST", url: status, body: { error: "x" }, status: 400, code: "invalid_request" },
    { name: "ftp output_url", method: "POST", url: status, body: { status: "succeeded", output_url: "ftp://93.184.216.34/o.mp4" }, status: 400, code: "invalid_request" },
    { name: "output_url that is not a URL", method: "POST", url: status, body: { status: "succeeded", output_url: "output.mp4" }, status: 400, code: "invalid_request" },
    { name: "unknown error_type", method: "POST", url: status, body: { status: "failed", error_info: { error_type: "gpu_error", stage: "inference", message: "x", retryable: true } }, status: 400, code: "invalid_request" },
    { name: "metrics as a string", method: "POST", url: status, body: { status: "failed", metrics: "fast" }, status: 400, code: "invalid_request" },
    { name: "success without output_url", method: "POST", url: status, body: { status: "succeeded", output_url: null }, status: 422, code: "output_url_required" },
    { name: "status for an unknown attempt", method: "POST", url: `/internal/buffer/jobs/${UNKNOWN_UUID}/status`, body: { status: "failed" }, status: 404, code: "not_found" },
    // progress
    { name: "progress above 1", method: "POST", url: progress, body: { progress: 1.5, worker_id: "w1" }, status: 400, code: "invalid_request" },
    { name: "progress as a string", method: "POST", url: progress, body: { progress: "half", worker_id: "w1" }, status: 400, code: "invalid_request" },
    { name: "progress without worker_id", method: "POST", url: progress, body: { progress: 0.5 }, status: 400, code: "invalid_request" },
    { name: "progress for a malformed job id", method: "POST", url: "/internal/jobs/123/progress", body: { progress: 0.5, worker_id: "w1" }, status: 400, code: "invalid_request" },
    { name: "progress for an unknown job", method: "POST", url: `/internal/jobs/${UNKNOWN_UUID}/progress`, body: { progress: 0.5, worker_id: "w1" }, status: 404, code: "not_found" },
    { name: "progress from a worker that does not hold the job", method: "POST", url: progress, body: { progress: 0.5, worker_id: "w2" }, status: 409, code: "lease_lost" },
    { name: "progress on a queued job", method: "POST", url: `/internal/jobs/${queuedId}/progress`, body: { progress: 0.5, worker_id: "w1" }, status: 409, code: "lease_lost" },
    // ops
    { name: "drain an unknown worker", method: "POST", url: "/internal/buffer/workers/ghost/drain", status: 404, code: "not_found" },
    // public API
    { name: "ftp video_url", method: "POST", url: "/v1/avatar/jobs", body: { ...job, video_url: "ftp://93.184.216.34/v.mp4" }, status: 400, code: "invalid_request" },
    { name: "javascript: audio_url", method: "POST", url: "/v1/avatar/jobs", body: { ...job, audio_url: "javascript:alert(1)" }, status: 400, code: "invalid_request" },
    { name: "missing audio_url", method: "POST", url: "/v1/avatar/jobs", body: { video_url: job.video_url }, status: 400, code: "invalid_request" },
    { name: "aspect ratio that is not a ratio", method: "POST", url: "/v1/avatar/jobs", body: { ...job, aspect_ratio: "wide" }, status: 400, code: "invalid_request" },
    { name: "resolution that is not a resolution", method: "POST", url: "/v1/avatar/jobs", body: { ...job, resolution: "huge" }, status: 400, code: "invalid_request" },
    { name: "priority out of range", method: "POST", url: "/v1/avatar/jobs", body: { ...job, priority: 1000 }, status: 400, code: "invalid_request" },
    { name: "params as a string", method: "POST", url: "/v1/avatar/jobs", body: { ...job, params: "x" }, status: 400, code: "invalid_request" },
    { name: "loopback video_url", method: "POST", url: "/v1/avatar/jobs", body: { ...job, video_url: "http://127.0.0.1:8000/v.mp4" }, status: 422, code: "url_not_allowed" },
    { name: "localhost audio_url", method: "POST", url: "/v1/avatar/jobs", body: { ...job, audio_url: "http://localhost/a.wav" }, status: 422, code: "url_not_allowed" },
    { name: "private webhook_url", method: "POST", url: "/v1/avatar/jobs", body: { ...job, webhook_url: "http://10.0.0.1/hook" }, status: 422, code: "url_not_allowed" },
    { name: "link-local (metadata) video_url", method: "POST", url: "/v1/avatar/jobs", body: { ...job, video_url: "http://169.254.169.254/latest/meta-data" }, status: 422, code: "url_not_allowed" },
    { name: "unique-local IPv6 video_url", method: "POST", url: "/v1/avatar/jobs", body: { ...job, video_url: "http://[fd12::1]/v.mp4" }, status: 422, code: "url_not_allowed" },
    { name: "Idempotency-Key with spaces", method: "POST", url: "/v1/avatar/jobs", body: job, headers: { "idempotency-key": "my key" }, status: 400, code: "invalid_request" },
    { name: "oversized job", method: "POST", url: "/v1/avatar/jobs", raw: { payload: JSON.stringify({ ...job, metadata: { pad: HUGE } }), contentType: "application/json" }, status: 413, code: "payload_too_large" },
    { name: "get a malformed job id", method: "GET", url: "/v1/avatar/jobs/not-a-uuid", status: 400, code: "invalid_request" },
    { name: "list with limit 0", method: "GET", url: "/v1/avatar/jobs?limit=0", status: 400, code: "invalid_request" },
    { name: "list with an unknown status", method: "GET", url: "/v1/avatar/jobs?status=done", status: 400, code: "invalid_request" },
    { name: "list with a forged cursor", method: "GET", url: `/v1/avatar/jobs?cursor=${Buffer.from('["x","y"]').toString("base64url")}`, status: 400, code: "invalid_request" },
    { name: "cancel a malformed job id", method: "DELETE", url: "/v1/avatar/jobs/123", status: 400, code: "invalid_request" },
    { name: "cancel an unknown job", method: "DELETE", url: `/v1/avatar/jobs/${UNKNOWN_UUID}`, status: 404, code: "not_found" },
    { name: "a route that does not exist", method: "POST", url: "/internal/buffer/jobs/claim-all", body: {}, status: 404, code: "not_found" },
  ];
  expect(cases.length).toBeGreaterThanOrEqual(30);

  const before = await snapshotTables(t.db);
  for (const c of cases) {
    const key = c.url.startsWith("/v1") ? { "x-api-key": PUBLIC_KEY } : { "x-internal-api-key": INTERNAL_KEY };
    const res = await t.app.inject({
      method: c.method,
      url: c.url,
      headers: { ...key, ...c.headers, ...(c.raw ? { "content-type": c.raw.contentType } : {}) },
      ...(c.raw ? { payload: c.raw.payload } : c.body !== undefined ? { payload: c.body as Record<string, unknown> } : {}),
    });
    const body = res.json<{ error: { code: string; message: string; request_id: string } }>();
    expect([res.statusCode, body.error?.code], `${c.name}: ${res.body.slice(0, 300)}`).toEqual([c.status, c.code]);
    expect(body.error.request_id).toBe(res.headers["x-request-id"]);
    expect(body.error.message.length).toBeGreaterThan(0);
  }
  expect(await snapshotTables(t.db)).toBe(before);

  // Validation errors say where the problem is.
  const detailed = await call(t.app, "POST", hb("w1"), { body: { status: "idle", capacity: "two" } });
  expect(detailed.error?.details).toEqual([expect.objectContaining({ path: "body.capacity" })]);
});

appTest("text PostgreSQL cannot store and URLs the router cannot read are 400s with the error body, not 500s", async ({ t }) => {
  const before = await snapshotTables(t.db);
  const nul = await call(t.app, "POST", "/internal/buffer/workers/w1/heartbeat", { body: { status: "idle", gpu_class: "RTX\u00004090" } });
  expect([nul.status, nul.error?.code, nul.error?.details?.[0]?.path]).toEqual([400, "invalid_request", "body.gpu_class"]);
  const surrogate = await call(t.app, "POST", "/v1/avatar/jobs", {
    key: null,
    headers: { "x-api-key": PUBLIC_KEY },
    body: { video_url: "https://93.184.216.34/a.mp4", audio_url: "https://93.184.216.34/a.wav", metadata: { name: "\ud800" } },
  });
  expect([surrogate.status, surrogate.error?.code, surrogate.error?.details?.[0]?.path]).toEqual([400, "invalid_request", "body.metadata.name"]);
  expect(await snapshotTables(t.db)).toBe(before);
  // A correctly paired surrogate (an emoji) is fine.
  const emoji = await call(t.app, "POST", "/internal/buffer/workers/w1/heartbeat", { body: { status: "idle", gpu_class: "RTX 🚀" } });
  expect(emoji.status).toBe(200);

  const badEscape = await call(t.app, "GET", "/v1/avatar/jobs/%E0%A4%A", { key: null, headers: { "x-api-key": PUBLIC_KEY } });
  expect([badEscape.status, badEscape.error?.code]).toEqual([400, "invalid_request"]);
  const longId = await call(t.app, "POST", `/internal/buffer/workers/${"w".repeat(300)}/drain`);
  expect([longId.status, longId.error?.code]).toEqual([400, "invalid_request"]);
});
