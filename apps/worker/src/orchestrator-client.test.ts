import { afterEach, describe, expect, it } from "vitest";
import { createOrchestratorClient, credentialRejected, type OrchestratorClient } from "./orchestrator-client.js";
import { json, startTestHttpServer, type TestHttpServer } from "./test-support/test-http-server.js";

const ok = { detail: "ok", heartbeat_interval_sec: 5, lease_ttl_sec: 30, cancel: [], lost: [], drain: false };
const beat = { status: "idle" as const, gpu_class: "x", capacity: 1, error: null };

let server: TestHttpServer | null = null;
let client: OrchestratorClient | null = null;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = null;
  server = null;
});

describe("orchestrator client", () => {
  it("sends the key header and the contract path, and parses the reply with the contract schema", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, ok));
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k-123", timeoutMs: 2000 });
    const res = await client.heartbeat("buffer-orch-local-2", beat);
    expect(res).toMatchObject({ ok: true, statusCode: 200, value: { detail: "ok", drain: false } });
    expect(server.requests[0]).toMatchObject({ method: "POST", path: "/internal/buffer/workers/buffer-orch-local-2/heartbeat" });
    expect(server.requests[0]?.headers["x-internal-api-key"]).toBe("k-123");
    expect(JSON.parse(server.requests[0]?.body ?? "")).toMatchObject(beat);
  });

  it("keeps a path prefix of the base URL (an orchestrator behind a reverse proxy)", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, { job: null, reason: "no_job" }));
    client = createOrchestratorClient({ baseUrl: `${server.url}/fleet`, apiKey: "k", timeoutMs: 2000 });
    await client.claimJob({ worker_id: "w", wait_ms: 0 });
    expect(server.requests[0]?.path).toBe("/fleet/internal/buffer/jobs/claim");
  });

  it("reports a 500 with its status code and a body excerpt", async () => {
    server = await startTestHttpServer((_req, res) => {
      res.writeHead(500, { "content-type": "text/html" });
      res.end(`<html>${"Internal Server Error ".repeat(100)}</html>`);
    });
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k", timeoutMs: 2000 });
    const res = await client.heartbeat("w", beat);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res).toMatchObject({ ok: false, statusCode: 500 });
    expect(res.bodyExcerpt).toContain("Internal Server Error");
    expect(res.bodyExcerpt.length).toBeLessThanOrEqual(501);
  });

  it("reads the contract's error code (401 unauthorized, 409 lease_lost); only the 401 is a rejected credential", async () => {
    server = await startTestHttpServer((req, res) =>
      req.path.includes("status")
        ? json(res, 409, { error: { code: "lease_lost", message: "stale attempt", request_id: "r" } })
        : json(res, 401, { error: { code: "unauthorized", message: "bad key", request_id: "r" } }),
    );
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "wrong", timeoutMs: 2000 });
    const hb = await client.heartbeat("w", beat);
    expect(hb).toMatchObject({ ok: false, statusCode: 401, code: "unauthorized" });
    const st = await client.reportJobStatus("3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70", { status: "failed", error: "x" });
    expect(st).toMatchObject({ ok: false, statusCode: 409, code: "lease_lost" });
    if (!st.ok) expect(st.error).toMatchObject({ name: "OrchestratorCallError", message: "stale attempt", statusCode: 409, code: "lease_lost" });
    expect([credentialRejected(hb), credentialRejected(st), credentialRejected({ statusCode: 403 }), credentialRejected({ statusCode: null })]).toEqual([true, false, true, false]);
  });

  it("reads the original orchestrator's replies: a bare heartbeat detail, a job without params or attempt, any status body", async () => {
    const bufferJobId = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";
    const jobId = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    server = await startTestHttpServer((req, res) => {
      if (req.path.endsWith("/heartbeat")) return json(res, 200, { detail: "ok" });
      if (req.path.endsWith("/claim")) {
        return json(res, 200, {
          job: { buffer_job_id: bufferJobId, musetalk_job_id: jobId, video_url: "http://127.0.0.1:1/v.mp4", audio_url: "http://127.0.0.1:1/a.wav", aspect_ratio: "9:16", resolution: "720p", queued_by: "salad" },
        });
      }
      if (req.path.endsWith("/status")) return json(res, 200, null);
      res.writeHead(200);
      res.end();
    });
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k", timeoutMs: 2000 });
    expect(await client.heartbeat("w", beat)).toMatchObject({
      ok: true,
      value: { protocol: "original", cancel: [], lost: [], drain: false },
    });
    const claim = await client.claimJob({ worker_id: "w", wait_ms: 0 });
    expect(claim).toMatchObject({ ok: true, value: { job: { buffer_job_id: bufferJobId, params: {}, attempt: null, lease_expires_at: null } } });
    if (claim.ok) expect(claim.value.job).not.toHaveProperty("queued_by");
    expect(await client.reportJobStatus(bufferJobId, { status: "succeeded", output_url: "http://127.0.0.1:1/o.mp4" })).toMatchObject({
      ok: true,
      value: { job_status: null },
    });
    expect(await client.reportProgress(jobId, { progress: 0.5, worker_id: "w" })).toMatchObject({ ok: true, value: { progress: null } });
  });

  it("still refuses a 200 that is not a reply at all or whose ids are malformed, and never hands over a job with a bad URL as runnable", async () => {
    let body: unknown = "<html>captive portal</html>";
    server = await startTestHttpServer((_req, res) => {
      if (typeof body === "string") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end(body);
        return;
      }
      json(res, 200, body);
    });
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k", timeoutMs: 2000 });
    expect(await client.heartbeat("w", beat)).toMatchObject({ ok: false, statusCode: 200 });
    body = { detail: "ok", cancel: ["../../etc"] };
    expect(await client.heartbeat("w", beat)).toMatchObject({ ok: false, statusCode: 200 });
    body = {
      job: { buffer_job_id: "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70", musetalk_job_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", video_url: "file:///etc/passwd", audio_url: "http://127.0.0.1:1/a.wav", aspect_ratio: "1:1", resolution: "512x512" },
    };
    // A valid attempt id with a bad URL is handed over as unrunnable (to be reported failed), never as a job to run.
    expect(await client.claimJob({ worker_id: "w", wait_ms: 0 })).toMatchObject({ ok: true, value: { job: { unrunnable: true } } });
    body = { job: { buffer_job_id: "not-an-id", musetalk_job_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" } };
    expect(await client.claimJob({ worker_id: "w", wait_ms: 0 })).toMatchObject({ ok: false, statusCode: 200 });
    body = { reason: "no_job" };
    expect(await client.claimJob({ worker_id: "w", wait_ms: 0 })).toMatchObject({ ok: false, statusCode: 200 });
  });

  it("turns a refused connection into a failed result with no status code", async () => {
    server = await startTestHttpServer(() => undefined);
    const url = server.url;
    await server.close();
    server = null;
    client = createOrchestratorClient({ baseUrl: url, apiKey: "k", timeoutMs: 2000 });
    const res = await client.heartbeat("w", beat);
    expect(res).toMatchObject({ ok: false, statusCode: null, aborted: false });
    if (!res.ok) expect(res.message).toMatch(/ECONNREFUSED/);
    // Logged as { err }: the failure as an Error, the network error as its cause.
    if (!res.ok) expect(res.error).toMatchObject({ name: "OrchestratorCallError", message: res.message, statusCode: null });
    if (!res.ok) expect(res.error.cause).toBeInstanceOf(Error);
  });

  it("gives up on a server that accepts the request and never answers", async () => {
    server = await startTestHttpServer(() => undefined);
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k", timeoutMs: 300 });
    const res = await client.heartbeat("w", beat);
    expect(res).toMatchObject({ ok: false, statusCode: null });
  });

  it("reaches a restarted orchestrator on the same port again (no stuck pool)", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, ok));
    const port = server.port;
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k", timeoutMs: 2000 });
    expect((await client.heartbeat("w", beat)).ok).toBe(true);
    await server.close();
    expect((await client.heartbeat("w", beat)).ok).toBe(false);
    server = await startTestHttpServer((_req, res) => json(res, 200, ok), port);
    expect((await client.heartbeat("w", beat)).ok).toBe(true);
  });

  it("stops a long-poll claim at once when the caller aborts", async () => {
    server = await startTestHttpServer(() => undefined);
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k", timeoutMs: 2000 });
    const controller = new AbortController();
    const pending = client.claimJob({ worker_id: "w", wait_ms: 20_000 }, { signal: controller.signal, timeoutMs: 25_000 });
    setTimeout(() => controller.abort(), 50);
    expect(await pending).toMatchObject({ ok: false, aborted: true });
  });
});
