import { startB2TestServer } from "@fleet/testing/b2-test-server";
import { startFakeInferenceServer } from "@fleet/testing/fake-inference-server";
import { probeMedia } from "@fleet/testing/media";
import { describe, expect } from "vitest";
import { e2eTest, Fleet } from "../test-support/fleet-harness.js";

describe("engines and storage behind the real orchestrator", () => {
  e2eTest("the original image's /generate works behind the new worker (driver generate)", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const fake = await startFakeInferenceServer({ durationMs: 200 });
    try {
      await fleet.startWorker("eng-generate", { env: { INFERENCE_DRIVER: "generate", INFERENCE_URL: fake.url } });
      const job = await fleet.submit();
      const done = await fleet.waitForStatus(job.id, "succeeded");
      expect(done.output_url).toMatch(new RegExp(`^${fake.url}/outputs/`));
      expect(done.metrics).toMatchObject({ driver: "generate", gpu_class: expect.any(String) as unknown });
      expect(done.metrics).toHaveProperty("stage_times");
      expect(fake.requests.filter((r) => r.path === "/generate")).toHaveLength(1);
      expect((await probeMedia(done.output_url ?? "")).hasAudio).toBe(true);
    } finally {
      await fleet.close();
      await fake.close();
    }
  });

  e2eTest("an out-of-memory /generate 500 keeps its structure, is retried, and fails when attempts run out", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl, { MAX_ATTEMPTS: "2" });
    const fake = await startFakeInferenceServer({ durationMs: 100 });
    try {
      await fleet.startWorker("eng-oom", { env: { INFERENCE_DRIVER: "generate", INFERENCE_URL: fake.url } });
      const job = await fleet.submit({ params: { fake: "oom" } });
      const done = await fleet.waitForStatus(job.id, "failed", 90_000);
      expect(done.attempts).toBe(2);
      expect(done.error_info).toMatchObject({ error_type: "processing_error", stage: "inference", retryable: true });
      expect(done.error_info?.message).toMatch(/CUDA out of memory/);
      expect(done.error_info?.details).toMatchObject({ http_status: 500 });
    } finally {
      await fleet.close();
      await fake.close();
    }
  });

  e2eTest("driver http waits for the engine to be READY before claiming anything", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const fake = await startFakeInferenceServer({ durationMs: 100, readyAfterMs: 600_000 });
    try {
      const w = await fleet.startWorker("eng-starting", { env: { INFERENCE_DRIVER: "http", INFERENCE_URL: fake.url, INFERENCE_POLL_MS: "100" } });
      const job = await fleet.submit();
      await expect.poll(async () => (await fleet.workerRow("eng-starting"))?.engine?.state, { timeout: 10_000 }).toBe("starting");
      await fleet.heartbeatsPass("eng-starting", 4);
      expect((await fleet.job(job.id)).status).toBe("queued");
      expect(fake.requests.filter((r) => r.method === "PUT")).toEqual([]);

      fake.setHealth("READY");
      expect((await fleet.waitForStatus(job.id, "succeeded")).worker_id).toBe("eng-starting");
      expect(w.logRecords().some((r) => r.msg === "inference_engine_state" && r.state === "ready")).toBe(true);
    } finally {
      await fleet.close();
      await fake.close();
    }
  });

  e2eTest("a failing prediction (driver http) ends failed after one attempt with the engine's error_info", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const fake = await startFakeInferenceServer({ durationMs: 100 });
    try {
      await fleet.startWorker("eng-fail", { env: { INFERENCE_DRIVER: "http", INFERENCE_URL: fake.url, INFERENCE_POLL_MS: "100" } });
      const job = await fleet.submit({ params: { fake: "fail" } });
      const done = await fleet.waitForStatus(job.id, "failed");
      expect(done.attempts).toBe(1);
      expect(done.error_info).toMatchObject({ error_type: "processing_error", stage: "inference", retryable: false });
    } finally {
      await fleet.close();
      await fake.close();
    }
  });

  e2eTest("outputs go to a private B2 bucket through expired tokens and 503s; video and metadata JSON land once under B2_PREFIX", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const b2 = await startB2TestServer();
    try {
      const w = await fleet.startWorker("eng-b2", { env: { STORAGE: "b2", B2_PREFIX: "avatar/outputs", ...b2.env() } });
      await w.waitForLog("storage_ready");
      expect(w.logRecords().find((r) => r.msg === "b2_storage_mode")).toMatchObject({ bucketType: "allPrivate", links: "authorized" });
      b2.expireTokens();
      b2.failNext(2, { status: 503, op: "upload" });
      const job = await fleet.submit();
      const done = await fleet.waitForStatus(job.id, "succeeded");
      const key = `avatar/outputs/${job.id}.mp4`;
      const url = new URL(done.output_url ?? "");
      expect(`${url.origin}${url.pathname}`).toBe(`${b2.url}/file/${b2.bucketName}/${key}`);
      expect(url.searchParams.get("Authorization")).toMatch(/\S/);
      // Exactly one version of each output, and nothing else: B2 keeps every upload of a name.
      expect(b2.listFileVersions().map((o) => o.fileName)).toEqual([`avatar/outputs/${job.id}.json`, key]);
      const probe = await probeMedia(done.output_url ?? "");
      expect(probe).toMatchObject({ hasVideo: true, hasAudio: true });
      const sidecar = JSON.parse((await b2.readObject(`avatar/outputs/${job.id}.json`)).toString()) as Record<string, unknown>;
      expect(sidecar).toMatchObject({ musetalk_job_id: job.id, worker_id: "eng-b2", b2_bucket: b2.bucketName, b2_file_name: key, output_url: done.output_url });
      expect(b2.requestCount("authorize")).toBeGreaterThanOrEqual(2);
      const logText = w.logs().join("\n");
      expect(logText).not.toContain(b2.appKey);
      expect(logText).not.toContain(url.searchParams.get("Authorization"));
      expect(logText).not.toContain(fleet.orchestrator.internalApiKey);
    } finally {
      await fleet.close();
      await b2.close();
    }
  });

  e2eTest("wrong B2 credentials: the worker reports an error and claims nothing, instead of failing every job", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const b2 = await startB2TestServer();
    try {
      const w = await fleet.startWorker("eng-b2-bad", { env: { STORAGE: "b2", ...b2.env(), B2_APP_KEY: "wrong-app-key" } });
      await w.waitForLog("storage_not_ready");
      const job = await fleet.submit();
      await expect.poll(async () => (await fleet.workerRow("eng-b2-bad"))?.status, { timeout: 10_000 }).toBe("error");
      await fleet.heartbeatsPass("eng-b2-bad", 4);
      expect((await fleet.job(job.id)).status).toBe("queued");
      expect(w.logRecords().filter((r) => r.msg === "buffer_job_claimed")).toEqual([]);
      const health = (await (await fetch(`${w.url}/healthz`)).json()) as { storage: { ready: boolean; detail: string } };
      expect(health.storage).toMatchObject({ ready: false });
      expect(health.storage.detail).toMatch(/B2 not usable/);
      expect(w.logs().join("\n")).not.toContain("wrong-app-key");
    } finally {
      await fleet.close();
      await b2.close();
    }
  });

  e2eTest("a B2 key that cannot write: the worker says why and claims nothing, so no GPU run is spent on it", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const b2 = await startB2TestServer({ capabilities: ["listBuckets", "listFiles", "readFiles", "shareFiles"] });
    try {
      const w = await fleet.startWorker("eng-b2-readonly", { env: { STORAGE: "b2", ...b2.env() } });
      await w.waitForLog("storage_not_ready");
      const job = await fleet.submit();
      await expect.poll(async () => (await fleet.workerRow("eng-b2-readonly"))?.status, { timeout: 10_000 }).toBe("error");
      const health = (await (await fetch(`${w.url}/healthz`)).json()) as { storage: { ready: boolean; detail: string } };
      expect(health.storage.detail).toMatch(/B2 not usable: configuration: .*lacks the writeFiles capability/);
      expect((await fleet.job(job.id)).status).toBe("queued");
      expect(b2.requestCount("get_upload_url")).toBe(0);
    } finally {
      await fleet.close();
      await b2.close();
    }
  });
});
