import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFakeInferenceServer, type FakeInferenceServer } from "@fleet/testing/fake-inference-server";
import { makeTestAudio, makeTestVideo, probeMedia, testMediaTools } from "@fleet/testing/media";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobAbortedError, JobError } from "../errors/job-error.js";
import { validateInputs } from "../media/validate.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { json, startTestHttpServer } from "../test-support/test-http-server.js";
import { createHttpDriver } from "./http-driver.js";
import type { FileInferenceTask } from "./inference-driver.js";
import { loadConfig } from "../config.js";

const defaults = loadConfig({}).limits;

let workDir: string;
let jobDir: string;
let fake: FakeInferenceServer | null = null;
let media: Awaited<ReturnType<typeof validateInputs>>;
const drivers: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "fleet-http-driver-"));
  jobDir = path.join(workDir, "jobs", "j1");
  await mkdir(jobDir, { recursive: true });
  await Promise.all([makeTestVideo(path.join(jobDir, "input-video.mp4"), { seconds: 1 }), makeTestAudio(path.join(jobDir, "input-audio.wav"), { seconds: 2 })]);
  media = await validateInputs(
    { video: path.join(jobDir, "input-video.mp4"), audio: path.join(jobDir, "input-audio.wav") },
    { ffprobePath: testMediaTools().ffprobe.path, timeoutMs: 30_000, limits: defaults.media, bounds: defaults.ffmpeg, signal: new AbortController().signal },
  );
});
afterEach(async () => {
  for (const d of drivers.splice(0)) await d.close();
  await fake?.close();
  fake = null;
});
afterAll(() => rm(workDir, { recursive: true, force: true }));

function driver(opts: { workDirInEngine?: string; timeoutMs?: number } = {}) {
  const d = createHttpDriver({
    url: fake!.url,
    workDir,
    workDirInEngine: opts.workDirInEngine ?? workDir,
    timeoutMs: opts.timeoutMs ?? 60_000,
    pollMs: 50,
    log: captureLogger().log,
  });
  drivers.push(d);
  return d;
}

let n = 0;
function task(signal: AbortSignal, params: Record<string, unknown> = {}, progress: number[] = []): FileInferenceTask {
  n += 1;
  return {
    jobId: "job",
    attemptId: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    videoPath: path.join(jobDir, "input-video.mp4"),
    videoSha256: null,
    audioPath: path.join(jobDir, "input-audio.wav"),
    outputPath: path.join(jobDir, `output-${n}.mp4`),
    video: media.video,
    audio: media.audio,
    aspectRatio: "9:16",
    resolution: "720p",
    params,
    signal,
    onProgress: (p) => progress.push(p),
  };
}

async function jobError(p: Promise<unknown>): Promise<JobError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(JobError);
  return err as JobError;
}

describe("http driver (Fleet's inference contract)", () => {
  it("maps /health-check to engine health, STARTING until the models are loaded", async () => {
    fake = await startFakeInferenceServer({ readyAfterMs: 60_000 });
    const d = driver();
    const signal = new AbortController().signal;
    expect(await d.health({ signal, busy: false })).toMatchObject({ driver: "http", state: "starting" });
    fake.setHealth("READY");
    expect(await d.health({ signal, busy: false })).toMatchObject({ state: "ready", lip_sync: false });
    fake.setHealth("SETUP_FAILED");
    expect((await d.health({ signal, busy: false })).state).toBe("error");
  });

  it("says unavailable when the container is down, busy when it is only slow during our own job", async () => {
    fake = await startFakeInferenceServer();
    const d = driver();
    await fake.close();
    fake = null;
    const signal = new AbortController().signal;
    expect((await d.health({ signal, busy: false })).state).toBe("unavailable");
    expect((await d.health({ signal, busy: true })).state).toBe("busy");
  });

  it("runs a prediction with paths on the shared volume, reads progress, and returns a real output", async () => {
    fake = await startFakeInferenceServer({ durationMs: 600, tickMs: 50 });
    const progress: number[] = [];
    const t = task(new AbortController().signal, {}, progress);
    const result = await driver().infer(t);
    const probe = await probeMedia(t.outputPath);
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: true });
    expect(probe.durationSec).toBeCloseTo(2, 0);
    expect(progress.filter((p) => p > 0 && p < 1).length).toBeGreaterThan(0);
    expect(result.metrics).toMatchObject({ driver: "http", engine: "fake-inference" });
    const put = fake.requests.find((r) => r.method === "PUT");
    expect(put?.body).toMatchObject({ input: { video_path: t.videoPath, output_path: t.outputPath, aspect_ratio: "9:16" } });
  });

  it("translates paths when the engine mounts the work dir elsewhere", async () => {
    fake = await startFakeInferenceServer({ durationMs: 100, pathMap: { from: "/shared", to: workDir } });
    const t = task(new AbortController().signal);
    await driver({ workDirInEngine: "/shared" }).infer(t);
    const put = fake.requests.find((r) => r.method === "PUT");
    expect(put?.body).toMatchObject({ input: { video_path: "/shared/jobs/j1/input-video.mp4" } });
    expect((await probeMedia(t.outputPath)).hasVideo).toBe(true);
  });

  it("keeps the engine's structured error: a failure is not retryable", async () => {
    fake = await startFakeInferenceServer({ mode: "fail", durationMs: 100 });
    const err = await jobError(driver().infer(task(new AbortController().signal)));
    expect(err.info).toMatchObject({ error_type: "processing_error", stage: "inference", retryable: false });
  });

  it("keeps out-of-memory retryable, so the job can go to another GPU", async () => {
    fake = await startFakeInferenceServer({ mode: "oom", durationMs: 100 });
    const err = await jobError(driver().infer(task(new AbortController().signal)));
    expect(err.info).toMatchObject({ error_type: "processing_error", retryable: true });
    expect(err.message).toMatch(/out of memory/i);
  });

  it("reports no face as a media error", async () => {
    fake = await startFakeInferenceServer({ mode: "no_face", durationMs: 100 });
    const err = await jobError(driver().infer(task(new AbortController().signal)));
    expect(err.info).toMatchObject({ error_type: "media_error", retryable: false });
  });

  it("treats 'succeeded' without an output file as a processing error (the phantom success)", async () => {
    fake = await startFakeInferenceServer({ mode: "crash_exit_0_without_output", durationMs: 100 });
    const err = await jobError(driver().infer(task(new AbortController().signal)));
    expect(err.info).toMatchObject({ error_type: "processing_error", stage: "postprocessing", retryable: false });
  });

  it("cancels the prediction in the engine when the job is aborted", async () => {
    fake = await startFakeInferenceServer({ mode: "hang" });
    const controller = new AbortController();
    const t = task(controller.signal);
    const run = driver().infer(t);
    await fake.waitForPrediction(t.attemptId, ["processing"]);
    controller.abort("cancelled");
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAbortedError);
    expect((err as JobAbortedError).reason).toBe("cancelled");
    expect((await fake.waitForPrediction(t.attemptId)).status).toBe("canceled");
  });

  it("tries a cancel again when the engine's first answer is a 5xx, so the GPU does not run on for nobody", async () => {
    // An engine whose first cancel answer is a 503 (busy, restarting its HTTP side): a worker that
    // gave up there would leave the prediction running to its end.
    const cancels: number[] = [];
    let canceled = false;
    const engine = await startTestHttpServer((req, res) => {
      if (req.method === "POST" && req.path.endsWith("/cancel")) {
        cancels.push(cancels.length === 0 ? 503 : 200);
        if (cancels.length === 1) return json(res, 503, { detail: "busy" });
        canceled = true;
        return json(res, 200, { id: "x", status: "canceled", progress: 0.1 });
      }
      json(res, 200, { id: "x", status: canceled ? "canceled" : "processing", progress: 0.1 });
    });
    try {
      const d = createHttpDriver({ url: engine.url, workDir, workDirInEngine: workDir, timeoutMs: 60_000, pollMs: 50, log: captureLogger().log });
      drivers.push(d);
      const controller = new AbortController();
      const run = d.infer(task(controller.signal));
      for (let i = 0; i < 200 && engine.requests.filter((r) => r.method === "GET").length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      controller.abort("cancelled");
      expect(await run.catch((e: unknown) => e)).toBeInstanceOf(JobAbortedError);
      expect(cancels).toEqual([503, 200]);
    } finally {
      await engine.close();
    }
  });

  it("cancels a prediction whose PUT the abort cut off: the engine may already have accepted it", async () => {
    // The engine takes the PUT and starts, but its answer has not arrived when the job is aborted.
    const held: Array<() => void> = [];
    const engine = await startTestHttpServer((req, res) => {
      if (req.method === "PUT") return void held.push(() => json(res, 202, { id: "x", status: "processing", progress: 0 }));
      if (req.method === "POST" && req.path.endsWith("/cancel")) return json(res, 200, { id: "x", status: "canceled", progress: 0 });
      json(res, 200, { id: "x", status: "processing", progress: 0 });
    });
    try {
      const d = createHttpDriver({ url: engine.url, workDir, workDirInEngine: workDir, timeoutMs: 60_000, pollMs: 50, log: captureLogger().log });
      drivers.push(d);
      const controller = new AbortController();
      const run = d.infer(task(controller.signal));
      for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(held).toHaveLength(1);
      controller.abort("cancelled");
      expect(await run.catch((e: unknown) => e)).toBeInstanceOf(JobAbortedError);
      expect(engine.requests.filter((r) => r.method === "POST" && r.path.endsWith("/cancel"))).toHaveLength(1);
    } finally {
      for (const answer of held) answer();
      await engine.close();
    }
  });

  it("asks GET /avatars/{sha256}: only a 200 naming that hash counts, anything else (a 404 from an engine without the route, garbage, no answer) is send_it", async () => {
    const sha = "ab".repeat(32);
    const answers: Array<() => [number, unknown]> = [
      () => [200, { video_sha256: sha, answer: "have_it" }],
      () => [200, { video_sha256: sha, answer: "send_it" }],
      () => [404, { error: { code: "not_found", message: "no route", request_id: "r" } }],
      () => [200, { video_sha256: "cd".repeat(32), answer: "have_it" }],
      () => [500, { detail: "boom" }],
    ];
    let next = 0;
    const engine = await startTestHttpServer((_req, res) => {
      const [status, body] = answers[next++]!();
      json(res, status, body);
    });
    try {
      const d = createHttpDriver({ url: engine.url, workDir, workDirInEngine: workDir, timeoutMs: 60_000, pollMs: 50, log: captureLogger().log });
      drivers.push(d);
      const signal = new AbortController().signal;
      const got = [];
      for (let i = 0; i < answers.length; i++) got.push(await d.avatar(sha, signal));
      expect(got).toEqual(["have_it", "send_it", "send_it", "send_it", "send_it"]);
      expect(new Set(engine.requests.map((r) => `${r.method} ${r.path}`))).toEqual(new Set([`GET /avatars/${sha}`]));
    } finally {
      await engine.close();
    }
    // Nobody listening at all.
    const closed = createHttpDriver({ url: engine.url, workDir, workDirInEngine: workDir, timeoutMs: 60_000, pollMs: 50, log: captureLogger().log });
    drivers.push(closed);
    expect(await closed.avatar(sha, new AbortController().signal)).toBe("send_it");
  });

  it("passes the engine's avatar cache stats on from /health-check, and drops a shape it does not know without failing the check", async () => {
    const stats = { bytes: 1024, max_bytes: 4096, entries: 1, hits: 2, misses: 1, hit_rate: 0.6667, evictions: 0, corrupt_rebuilt: 0 };
    let cache: unknown = stats;
    const engine = await startTestHttpServer((_req, res) => json(res, 200, { status: "READY", engine: "musetalk-v15", lip_sync: true, avatar_cache: cache }));
    try {
      const d = createHttpDriver({ url: engine.url, workDir, workDirInEngine: workDir, timeoutMs: 60_000, pollMs: 50, log: captureLogger().log });
      drivers.push(d);
      const signal = new AbortController().signal;
      expect(await d.health({ signal, busy: false })).toMatchObject({ state: "ready", avatar_cache: stats });
      cache = { bytes: "lots" };
      const odd = await d.health({ signal, busy: false });
      expect(odd.state).toBe("ready");
      expect(odd).not.toHaveProperty("avatar_cache");
    } finally {
      await engine.close();
    }
  });

  it("PUTs a task without a video as video_sha256 alone, and one with a video with both", async () => {
    fake = await startFakeInferenceServer({ durationMs: 100 });
    const sha = "ab".repeat(32);
    await driver().infer({ ...task(new AbortController().signal), videoSha256: sha });
    // The fake engine keeps no avatars: a task without the video fails there, retryable.
    const err = await jobError(driver().infer({ ...task(new AbortController().signal), videoPath: null, video: null, videoSha256: sha }));
    expect(err.info).toMatchObject({ error_type: "processing_error", retryable: true, details: { cause: "avatar_not_prepared" } });
    const [withVideo, withoutVideo] = fake.requests.filter((r) => r.method === "PUT").map((r) => (r.body as { input: Record<string, unknown> }).input);
    expect(withVideo).toMatchObject({ video_path: path.join(jobDir, "input-video.mp4"), video_sha256: sha });
    expect(withoutVideo).toMatchObject({ video_sha256: sha });
    expect(withoutVideo).not.toHaveProperty("video_path");
  });

  it("cancels and fails retryably when the run passes the job deadline", async () => {
    fake = await startFakeInferenceServer({ mode: "hang" });
    const t = task(new AbortController().signal);
    const err = await jobError(driver({ timeoutMs: 500 }).infer(t));
    expect(err.info).toMatchObject({ stage: "inference", retryable: true });
    expect(err.message).toMatch(/timed out/);
    expect((await fake.waitForPrediction(t.attemptId)).status).toBe("canceled");
  });

  it("does not start a second run when the same prediction is PUT again (idempotent by id)", async () => {
    fake = await startFakeInferenceServer({ durationMs: 200 });
    const t = task(new AbortController().signal);
    await driver().infer(t);
    await driver().infer({ ...t });
    expect(fake.runsStarted()).toBe(1);
  });
});
