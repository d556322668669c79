import { afterEach, describe, expect, it } from "vitest";
import { createOrchestratorClient, type OrchestratorClient } from "./orchestrator-client.js";
import { createProgressReporter } from "./progress-reporter.js";
import { captureLogger } from "./test-support/capture-logger.js";
import { json, startTestHttpServer, type TestHttpServer } from "./test-support/test-http-server.js";
import { sleep } from "./util/sleep.js";

const jobId = "9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70";
const bufferJobId = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";

let server: TestHttpServer | null = null;
let client: OrchestratorClient | null = null;
afterEach(async () => {
  await client?.close();
  await server?.close();
  client = null;
  server = null;
});

function reporter(onLeaseLost?: () => void) {
  client = createOrchestratorClient({ baseUrl: server!.url, apiKey: "k", timeoutMs: 1000 });
  return createProgressReporter({ client, workerId: "w1", jobId, bufferJobId, timeoutMs: 1000, log: captureLogger().log, onLeaseLost });
}

const sent = () => server!.requests.map((r) => JSON.parse(r.body) as { progress: number; phase: string; worker_id: string; buffer_job_id: string });

describe("progress reporter", () => {
  it("never sends a value lower than one it already sent", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, { detail: "ok", progress: 0 }));
    const p = reporter();
    p.update(0.5, "inferring");
    await sleep(400);
    p.update(0.2, "uploading");
    await sleep(400);
    await p.settle();
    const values = sent().map((b) => b.progress);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(sent().at(-1)).toMatchObject({ progress: 0.5, phase: "uploading" });
  });

  it("throttles a flood of tiny steps to a few requests, carrying worker and attempt ids", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, { detail: "ok", progress: 0 }));
    const p = reporter();
    for (let i = 0; i <= 1000; i++) p.update(0.1 + i * 0.0001, "inferring");
    await sleep(600);
    await p.settle();
    expect(server.requests.length).toBeLessThanOrEqual(5);
    expect(sent()[0]).toMatchObject({ worker_id: "w1", buffer_job_id: bufferJobId });
    expect(server.requests[0]?.path).toBe(`/internal/jobs/${jobId}/progress`);
  });

  it("calls onLeaseLost when the orchestrator answers 409 lease_lost", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 409, { error: { code: "lease_lost", message: "stale", request_id: "r" } }));
    let lost = 0;
    const p = reporter(() => (lost += 1));
    p.update(0.3, "inferring");
    await sleep(300);
    await p.settle();
    expect(lost).toBe(1);
  });

  it("keeps one request in flight when the orchestrator hangs, instead of piling them up", async () => {
    server = await startTestHttpServer(() => undefined);
    const p = reporter();
    for (let i = 0; i < 100; i++) {
      p.update(i / 100, "inferring");
      await sleep(5);
    }
    expect(server.requests).toHaveLength(1);
    await p.settle();
  });
});
