import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFakeInferenceServer, type FakeInferenceServer } from "@fleet/testing/fake-inference-server";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeCorruptFile, makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobAbortedError, JobError } from "../errors/job-error.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { json, startTestHttpServer, type TestHttpServer } from "../test-support/test-http-server.js";
import { createGenerateDriver } from "./generate-driver.js";

let dir: string;
let files: FileServer;
let fake: FakeInferenceServer | null = null;
let legacy: TestHttpServer | null = null;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-generate-"));
  await Promise.all([
    makeTestVideo(path.join(dir, "avatar.mp4"), { seconds: 1 }),
    makeTestAudio(path.join(dir, "voice.wav"), { seconds: 2 }),
    makeCorruptFile(path.join(dir, "corrupt.mp4")),
  ]);
  files = await startFileServer(dir);
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await fake?.close();
  await legacy?.close();
  fake = null;
  legacy = null;
});
afterAll(async () => {
  await files.close();
  await rm(dir, { recursive: true, force: true });
});

function driver(url: string, timeoutMs = 60_000) {
  const d = createGenerateDriver({ url, timeoutMs, log: captureLogger().log });
  closers.push(() => d.close());
  return d;
}

function job(params: Record<string, unknown> = {}, video = "/avatar.mp4") {
  return {
    musetalk_job_id: "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70",
    video_url: files.urlFor(video),
    audio_url: files.urlFor("/voice.wav"),
    aspect_ratio: "9:16",
    resolution: "720p",
    params,
  };
}

async function jobError(p: Promise<unknown>): Promise<JobError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(JobError);
  return err as JobError;
}

const noop = () => undefined;

describe("generate driver (the original image's /generate)", () => {
  it("uses /hc as health", async () => {
    fake = await startFakeInferenceServer();
    expect(await driver(fake.url).health({ signal: new AbortController().signal, busy: false })).toMatchObject({ driver: "generate", state: "ready" });
  });

  it("returns the image's output_url and metrics on success", async () => {
    fake = await startFakeInferenceServer({ durationMs: 100 });
    const result = await driver(fake.url).generate({ job: job(), signal: new AbortController().signal, onProgress: noop });
    expect(result.outputUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/outputs\//);
    expect(result.metrics).toHaveProperty("stage_times");
    expect(fake.requests.find((r) => r.path === "/generate")?.body).toEqual(job());
  });

  it("keeps a 422 media_error's fields as error_info instead of a flattened string", async () => {
    fake = await startFakeInferenceServer({ durationMs: 100 });
    const err = await jobError(driver(fake.url).generate({ job: job({}, "/corrupt.mp4"), signal: new AbortController().signal, onProgress: noop }));
    expect(err.info).toMatchObject({ error_type: "media_error", stage: "validation", retryable: false, message: "Invalid video file: ffprobe failed" });
    expect(err.info.details).toMatchObject({ http_status: 422 });
    expect(err.info.details).toHaveProperty("stage_times");
  });

  it("keeps a 500 processing_error's retryable flag (out of memory → retry elsewhere)", async () => {
    fake = await startFakeInferenceServer({ durationMs: 100 });
    const err = await jobError(driver(fake.url).generate({ job: job({ fake: "oom" }), signal: new AbortController().signal, onProgress: noop }));
    expect(err.info).toMatchObject({ error_type: "processing_error", stage: "inference", retryable: true });
    expect(String(err.info.details?.stack_trace)).toMatch(/Traceback/);
  });

  it("refuses the legacy {status:'ok', b2_*} 200 body: no output_url is no success", async () => {
    legacy = await startTestHttpServer((_req, res) => json(res, 200, { status: "ok", b2_bucket: "talking-avatar", b2_file_name: "x.mp4", metrics: {} }));
    const err = await jobError(driver(legacy.url).generate({ job: job(), signal: new AbortController().signal, onProgress: noop }));
    expect(err.info).toMatchObject({ error_type: "processing_error", stage: "postprocessing", retryable: false });
  });

  it("reads FastAPI's own validation 422 {detail:[...]} as a non-retryable request problem", async () => {
    legacy = await startTestHttpServer((_req, res) => json(res, 422, { detail: [{ loc: ["body", "video_url"], msg: "invalid url" }] }));
    const err = await jobError(driver(legacy.url).generate({ job: job(), signal: new AbortController().signal, onProgress: noop }));
    expect(err.info).toMatchObject({ retryable: false });
    expect(String(err.info.details?.body)).toContain("invalid url");
  });

  it("drops the call when the job is aborted", async () => {
    fake = await startFakeInferenceServer({ mode: "hang" });
    const controller = new AbortController();
    const run = driver(fake.url).generate({ job: job(), signal: controller.signal, onProgress: noop });
    setTimeout(() => controller.abort("cancelled"), 300);
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAbortedError);
  });

  it("fails retryably when /generate passes the job deadline", async () => {
    fake = await startFakeInferenceServer({ mode: "hang" });
    const err = await jobError(driver(fake.url, 500).generate({ job: job(), signal: new AbortController().signal, onProgress: noop }));
    expect(err.info).toMatchObject({ stage: "inference", retryable: true });
  });
});
