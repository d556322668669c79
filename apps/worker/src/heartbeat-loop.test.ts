import type { HeartbeatReply, HeartbeatResponse } from "@fleet/contract";
import { afterEach, describe, expect, it } from "vitest";
import { heartbeatIntervalFor, startHeartbeatLoop, type HeartbeatLoop } from "./heartbeat-loop.js";
import { createOrchestratorClient, type OrchestratorClient } from "./orchestrator-client.js";
import { captureLogger } from "./test-support/capture-logger.js";
import { json, startTestHttpServer, type TestHttpServer } from "./test-support/test-http-server.js";
import { sleep } from "./util/sleep.js";

const okReply: HeartbeatResponse = { detail: "ok", heartbeat_interval_sec: 5, lease_ttl_sec: 30, cancel: [], lost: [], drain: false };

let server: TestHttpServer | null = null;
let client: OrchestratorClient | null = null;
let loop: HeartbeatLoop | null = null;
afterEach(async () => {
  await loop?.stop();
  await client?.close();
  await server?.close();
  loop = null;
  client = null;
  server = null;
});

async function until(cond: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await sleep(20);
  }
}

function start(intervalMs: number, onReply: (r: HeartbeatReply) => void = () => undefined) {
  const logs = captureLogger();
  client = createOrchestratorClient({ baseUrl: server!.url, apiKey: "k", timeoutMs: 1000 });
  loop = startHeartbeatLoop({
    client,
    workerId: "w1",
    intervalMs,
    timeoutMs: 1000,
    log: logs.log,
    buildBody: () => ({ status: "idle", gpu_class: "g", capacity: 1, error: null }),
    onReply,
  });
  return logs;
}

describe("heartbeat loop", () => {
  it("logs a 500 as buffer_worker_loop_error with status and body, stays unhealthy, then logs recovery once", async () => {
    let failing = true;
    server = await startTestHttpServer((_req, res) => (failing ? json(res, 500, { error: "db down" }) : json(res, 200, okReply)));
    const logs = start(50);
    await until(() => logs.messages("buffer_worker_loop_error").length >= 2);
    const err = logs.messages("buffer_worker_loop_error")[0];
    expect(err).toMatchObject({ statusCode: 500, workerId: "w1" });
    expect(err?.body).toContain("db down");
    expect(loop!.snapshot().healthy).toBe(false);

    failing = false;
    await until(() => loop!.snapshot().healthy);
    await sleep(300);
    expect(logs.messages("buffer_worker_heartbeat_recovered")).toHaveLength(1);
    expect(loop!.snapshot().lastAcceptedAt).not.toBeNull();
  });

  it("reports a 401 as a configuration error on every attempt", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 401, { error: { code: "unauthorized", message: "bad key", request_id: "r" } }));
    const logs = start(30);
    await until(() => logs.messages("buffer_worker_loop_error").length >= 3);
    for (const r of logs.messages("buffer_worker_loop_error")) {
      expect(r).toMatchObject({ level: "error", statusCode: 401, configurationError: true });
      expect(String(r.hint)).toMatch(/INTERNAL_API_KEY/);
    }
  });

  it("backs off while failing instead of hammering the orchestrator", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 503, {}));
    start(100);
    await sleep(2_000);
    // A 100 ms period would be 20 beats in 2 s; a hot loop would be thousands. Backoff gives a handful.
    expect(server.requests.length).toBeGreaterThanOrEqual(2);
    expect(server.requests.length).toBeLessThanOrEqual(10);
  });

  it("hands every accepted reply to onReply, cancel and lost lists included", async () => {
    const id = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";
    server = await startTestHttpServer((_req, res) => json(res, 200, { ...okReply, cancel: [id], drain: true }));
    const replies: HeartbeatReply[] = [];
    start(50, (r) => replies.push(r));
    await until(() => replies.length >= 1);
    expect(replies[0]).toMatchObject({ cancel: [id], drain: true });
  });

  it("beatNow sends at once, for the draining and final heartbeats", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, okReply));
    start(60_000);
    await until(() => server!.requests.length === 1);
    expect(await loop!.beatNow()).toBe(true);
    expect(server.requests).toHaveLength(2);
  });

  it("accepts the original orchestrator's bare {\"detail\":\"ok\"}, says once that it speaks the original protocol, and keeps its own interval", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, { detail: "ok" }));
    const replies: HeartbeatReply[] = [];
    const logs = start(50, (r) => replies.push(r));
    await until(() => replies.length >= 4);
    expect(loop!.snapshot()).toMatchObject({ healthy: true, protocol: "original", intervalMs: 50 });
    expect(replies[0]).toMatchObject({ protocol: "original", cancel: [], lost: [], drain: false });
    expect(logs.messages("orchestrator_protocol_detected")).toEqual([expect.objectContaining({ protocol: "original", workerId: "w1" })]);
    expect(logs.messages("buffer_worker_loop_error")).toEqual([]);
  });

  it("beats at the interval a Fleet orchestrator names when it is shorter than the configured one", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, { ...okReply, heartbeat_interval_sec: 0.3, lease_ttl_sec: 30 }));
    const logs = start(10_000);
    await until(() => server!.requests.length >= 3, 5_000);
    expect(loop!.snapshot()).toMatchObject({ protocol: "fleet", intervalMs: 300 });
    expect(logs.messages("orchestrator_protocol_detected")).toEqual([expect.objectContaining({ protocol: "fleet", heartbeatIntervalSec: 0.3 })]);
    expect(logs.messages("buffer_worker_heartbeat_interval_set")).toHaveLength(1);
  });
});

describe("heartbeat interval", () => {
  it("lets the orchestrator's interval and a third of its lease cap the configured one, bounded, and keeps a faster configured one", () => {
    expect(heartbeatIntervalFor({ heartbeat_interval_sec: 5, lease_ttl_sec: 30 }, 10_000)).toBe(5_000);
    expect(heartbeatIntervalFor({ heartbeat_interval_sec: 20, lease_ttl_sec: 30 }, 60_000)).toBe(10_000);
    expect(heartbeatIntervalFor({ heartbeat_interval_sec: 5, lease_ttl_sec: 30 }, 500)).toBe(500);
    expect(heartbeatIntervalFor({ heartbeat_interval_sec: 0.001 }, 5_000)).toBe(250);
    expect(heartbeatIntervalFor({ heartbeat_interval_sec: 3_600 }, 300_000)).toBe(60_000);
    expect(heartbeatIntervalFor({}, 500)).toBe(500);
    expect(heartbeatIntervalFor({ lease_ttl_sec: 3 }, 5_000)).toBe(1_000);
  });
});
