import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createOrchestratorClient, type OrchestratorClient } from "./orchestrator-client.js";
import { createOutbox, type Outbox, type OutboxEntry } from "./outbox.js";
import { captureLogger } from "./test-support/capture-logger.js";
import { json, startTestHttpServer, type TestHttpServer } from "./test-support/test-http-server.js";

const id = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";
const entry: OutboxEntry = {
  buffer_job_id: id,
  musetalk_job_id: "9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70",
  worker_id: "w1",
  written_at: new Date().toISOString(),
  report: { status: "succeeded", error: null, output_url: "https://cdn.example/x.mp4", metrics: { total_time: 1 }, error_info: null },
};

let dir: string;
let server: TestHttpServer | null = null;
let client: OrchestratorClient | null = null;
const outboxes: Outbox[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-outbox-"));
});
afterEach(async () => {
  for (const o of outboxes.splice(0)) await o.stop();
  await client?.close();
  await server?.close();
  client = null;
  server = null;
  await rm(dir, { recursive: true, force: true });
});

function outbox(): { outbox: Outbox; logs: ReturnType<typeof captureLogger> } {
  const logs = captureLogger();
  client ??= createOrchestratorClient({ baseUrl: server!.url, apiKey: "k", timeoutMs: 1000 });
  const o = createOutbox({ dir, client, log: logs.log, timeoutMs: 1000, maxBackoffMs: 200 });
  outboxes.push(o);
  return { outbox: o, logs };
}

const files = async () => (await readdir(dir).catch(() => [])).filter((f) => f.endsWith(".json"));

describe("outbox", () => {
  it("writes the report to disk before sending it, and removes it once acknowledged", async () => {
    const seenOnDisk: string[][] = [];
    server = await startTestHttpServer(async (_req, res) => {
      seenOnDisk.push(await files());
      json(res, 200, { detail: "ok", job_status: "succeeded" });
    });
    const { outbox: o } = outbox();
    await o.deliver(entry);
    expect(await o.flush(5_000)).toBe(true);
    expect(seenOnDisk[0]).toEqual([`${id}.json`]);
    expect(await files()).toEqual([]);
    expect(JSON.parse(server.requests[0]?.body ?? "")).toMatchObject(entry.report);
    expect(server.requests[0]?.path).toBe(`/internal/buffer/jobs/${id}/status`);
  });

  it("keeps retrying through 5xx and refused connections until the orchestrator acknowledges", async () => {
    let answers = 0;
    server = await startTestHttpServer((_req, res) => {
      answers += 1;
      if (answers <= 3) return json(res, 503, { error: { code: "service_unavailable", message: "db", request_id: "r" } });
      json(res, 200, { detail: "ok", job_status: "succeeded" });
    });
    const { outbox: o, logs } = outbox();
    await o.deliver(entry);
    expect(o.pendingIds()).toEqual([id]);
    expect(await o.flush(10_000)).toBe(true);
    expect(answers).toBe(4);
    expect(logs.messages("buffer_job_status_update_failed")).toHaveLength(3);
    expect(logs.messages("buffer_job_status_reported")).toHaveLength(1);
  });

  it("ends on 409 lease_lost: another attempt owns the job, retrying cannot help", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 409, { error: { code: "lease_lost", message: "stale", request_id: "r" } }));
    const { outbox: o, logs } = outbox();
    await o.deliver(entry);
    expect(await o.flush(5_000)).toBe(true);
    expect(server.requests).toHaveLength(1);
    expect(logs.messages("buffer_job_status_rejected")[0]).toMatchObject({ statusCode: 409, code: "lease_lost" });
    expect(await files()).toEqual([]);
  });

  it("re-sends what a previous run left on disk (a crash between writing and sending)", async () => {
    let accept = false;
    server = await startTestHttpServer((_req, res) => (accept ? json(res, 200, { detail: "ok", job_status: "succeeded" }) : json(res, 502, {})));
    const first = outbox();
    await first.outbox.deliver(entry);
    await first.outbox.stop();
    expect(await files()).toEqual([`${id}.json`]);
    expect(JSON.parse(await readFile(path.join(dir, `${id}.json`), "utf8"))).toMatchObject({ buffer_job_id: id });

    accept = true;
    const second = outbox();
    await second.outbox.start();
    expect(await second.outbox.flush(5_000)).toBe(true);
    expect(second.logs.messages("outbox_resend_after_restart")).toHaveLength(1);
    expect(await files()).toEqual([]);
  });

  it("sets aside an unreadable entry instead of crashing on it", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, { detail: "ok", job_status: "succeeded" }));
    const { writeFile, mkdir } = await import("node:fs/promises");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "broken.json"), "{ not json");
    const { outbox: o, logs } = outbox();
    await o.start();
    expect(logs.messages("outbox_entry_unreadable")).toHaveLength(1);
    expect(await readdir(path.join(dir, "rejected"))).toEqual(["broken.json"]);
  });

  it("cleans NUL and unpaired surrogates out of a report, which PostgreSQL would refuse for ever", async () => {
    server = await startTestHttpServer((_req, res) => json(res, 200, { detail: "ok", job_status: "failed" }));
    const { outbox: o } = outbox();
    const message = "ffprobe: bad header \u0000\ud800 garbage";
    await o.deliver({
      ...entry,
      report: {
        status: "failed",
        error: message,
        output_url: null,
        metrics: null,
        error_info: { error_type: "media_error", stage: "validation", message, retryable: false, details: { stderr: message } },
      },
    });
    expect(await o.flush(5_000)).toBe(true);
    const sent = server.requests[0]?.body ?? "";
    expect(sent).not.toMatch(/\\u0000|\\ud800/i);
    expect((JSON.parse(sent) as { error: string }).error).toBe("ffprobe: bad header \uFFFD garbage");
  });
});
