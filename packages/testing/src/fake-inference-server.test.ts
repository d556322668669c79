import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenerateFailure, GenerateSuccess, InferenceHealth, Prediction } from "@fleet/contract";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startFakeInferenceServer } from "./fake-inference-server.js";
import type { FakeInferenceServer, FakeInferenceServerOptions } from "./fake-inference-server.js";
import { startFileServer } from "./file-server.js";
import type { FileServer } from "./file-server.js";
import { makeCorruptFile, makeTestAudio, makeTestVideo, probeMedia } from "./media.js";

let dir: string;
let video: string;
let audio: string;
let files: FileServer;
let fake: FakeInferenceServer | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-fake-inference-test-"));
  video = await makeTestVideo(join(dir, "avatar.mp4"), { seconds: 1, width: 96, height: 64, fps: 10 });
  audio = await makeTestAudio(join(dir, "voice.wav"), { seconds: 1.5 });
  await makeCorruptFile(join(dir, "corrupt.mp4"));
  files = await startFileServer(dir);
});
afterAll(async () => {
  await files.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeInferenceServerOptions = {}): Promise<FakeInferenceServer> {
  fake = await startFakeInferenceServer({ durationMs: 100, tickMs: 20, ...opts });
  return fake;
}

function input(id: string, params: Record<string, unknown> = {}) {
  return { input: { video_path: video, audio_path: audio, output_path: join(dir, "out", `${id}.mp4`), aspect_ratio: "9:16", resolution: "480p", params } };
}

async function put(s: FakeInferenceServer, id: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${s.url}/predictions/${id}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function get(s: FakeInferenceServer, id: string): Promise<Prediction> {
  return Prediction.parse(await (await fetch(`${s.url}/predictions/${id}`)).json());
}

/** Polls GET /predictions/{id} until terminal, keeping every progress value seen. */
async function pollToEnd(s: FakeInferenceServer, id: string): Promise<{ last: Prediction; seen: number[] }> {
  const seen: number[] = [];
  for (let i = 0; i < 1500; i += 1) {
    const p = await get(s, id);
    seen.push(p.progress);
    if (p.status === "succeeded" || p.status === "failed" || p.status === "canceled") return { last: p, seen };
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`prediction ${id} never ended`);
}

async function health(s: FakeInferenceServer): Promise<InferenceHealth> {
  return InferenceHealth.parse(await (await fetch(`${s.url}/health-check`)).json());
}

describe("fake inference server, http contract", () => {
  it("reports STARTING until the configured delay passes, then READY, and refuses work while starting", async () => {
    const s = await start({ readyAfterMs: 400 });
    expect((await health(s)).status).toBe("STARTING");
    expect((await put(s, "early", input("early"))).status).toBe(503);
    await new Promise((r) => setTimeout(r, 450));
    expect(await health(s)).toMatchObject({ status: "READY", lip_sync: false });
    s.setHealth("SETUP_FAILED");
    expect((await health(s)).status).toBe("SETUP_FAILED");
  });

  it("makes a real video of the audio's length with monotonic progress, and a re-PUT does not run it twice", async () => {
    const s = await start({ durationMs: 300 });
    const first = await put(s, "job-ok", input("job-ok"));
    expect(first.status).toBe(202);
    const again = await put(s, "job-ok", input("job-ok"));
    expect(again.status).toBe(200);
    expect(Prediction.parse(again.body).id).toBe("job-ok");
    const { last, seen } = await pollToEnd(s, "job-ok");
    expect(last).toMatchObject({ status: "succeeded", progress: 1, phase: "completed", output: { video_path: join(dir, "out", "job-ok.mp4") } });
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const probe = await probeMedia(join(dir, "out", "job-ok.mp4"));
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: true, width: 96, height: 64 });
    expect(probe.durationSec).toBeGreaterThan(1.3);
    expect(probe.durationSec).toBeLessThan(1.7);
    expect((await put(s, "job-ok", input("job-ok"))).status).toBe(200);
    expect(s.runsStarted()).toBe(1);
    expect(s.requests.filter((r) => r.method === "PUT").map((r) => r.status)).toEqual([202, 200, 200]);
  });

  it("shows intermediate progress and phases on a slow run", async () => {
    const s = await start();
    s.setMode("slow", { durationMs: 1000 });
    await put(s, "job-slow", input("job-slow"));
    const { last, seen } = await pollToEnd(s, "job-slow");
    expect(last.status).toBe("succeeded");
    expect(seen.some((p) => p > 0 && p < 1)).toBe(true);
    expect(existsSync(join(dir, "out", "job-slow.mp4"))).toBe(true);
  });

  it.each([
    ["fail", { error_type: "processing_error", stage: "inference", retryable: false }],
    ["oom", { error_type: "processing_error", stage: "inference", retryable: true, message: expect.stringContaining("CUDA out of memory") as unknown }],
    ["no_face", { error_type: "media_error", stage: "preprocessing", retryable: false }],
  ])("ends a %s run as failed with a structured error", async (mode, error) => {
    const s = await start({ mode: mode as "fail" });
    await put(s, `job-${mode}`, input(`job-${mode}`));
    const { last } = await pollToEnd(s, `job-${mode}`);
    expect(last).toMatchObject({ status: "failed", error });
    expect(existsSync(join(dir, "out", `job-${mode}.mp4`))).toBe(false);
  });

  it("hangs until cancelled, then reads canceled and leaves no output", async () => {
    const s = await start({ mode: "hang", durationMs: 50 });
    await put(s, "job-hang", input("job-hang"));
    await s.waitForPrediction("job-hang", ["processing"]);
    await new Promise((r) => setTimeout(r, 300));
    expect((await get(s, "job-hang")).status).toBe("processing");
    const res = await fetch(`${s.url}/predictions/job-hang/cancel`, { method: "POST" });
    expect(Prediction.parse(await res.json()).status).toBe("canceled");
    expect((await get(s, "job-hang")).status).toBe("canceled");
    expect((await fetch(`${s.url}/predictions/job-hang/cancel`, { method: "POST" })).status).toBe(200);
    expect((await fetch(`${s.url}/predictions/nope/cancel`, { method: "POST" })).status).toBe(404);
    expect(existsSync(join(dir, "out", "job-hang.mp4"))).toBe(false);
  });

  it("cancels a run in the middle of ffmpeg without leaving a partial file", async () => {
    const s = await start({ durationMs: 2000 });
    await put(s, "job-cancel", input("job-cancel"));
    await s.waitForPrediction("job-cancel", ["processing"]);
    await fetch(`${s.url}/predictions/job-cancel/cancel`, { method: "POST" });
    await new Promise((r) => setTimeout(r, 200));
    expect(s.prediction("job-cancel")?.status).toBe("canceled");
    expect(existsSync(join(dir, "out", "job-cancel.mp4"))).toBe(false);
  });

  it("claims success without writing an output in crash_exit_0_without_output mode", async () => {
    const s = await start({ mode: "crash_exit_0_without_output" });
    await put(s, "job-crash", input("job-crash"));
    const { last } = await pollToEnd(s, "job-crash");
    expect(last).toMatchObject({ status: "succeeded", output: { video_path: join(dir, "out", "job-crash.mp4") } });
    expect(existsSync(join(dir, "out", "job-crash.mp4"))).toBe(false);
  });

  it("lets params.fake pick one run's mode while the server mode stays ok", async () => {
    const s = await start();
    await put(s, "job-a", input("job-a", { fake: "oom" }));
    await put(s, "job-b", input("job-b", { fake: { mode: "no_face", duration_ms: 10 } }));
    await put(s, "job-c", input("job-c"));
    expect((await s.waitForPrediction("job-a")).error?.retryable).toBe(true);
    expect((await s.waitForPrediction("job-b")).error?.error_type).toBe("media_error");
    expect((await s.waitForPrediction("job-c")).status).toBe("succeeded");
  });

  it("answers 422 to a malformed request, 404 to an unknown id, and 409 plus BUSY past its concurrency", async () => {
    const s = await start({ concurrency: 1, mode: "hang" });
    expect((await put(s, "bad", { input: { video_path: "" } })).status).toBe(422);
    expect((await fetch(`${s.url}/predictions/unknown`)).status).toBe(404);
    expect((await put(s, "one", input("one"))).status).toBe(202);
    expect((await health(s)).status).toBe("BUSY");
    expect((await put(s, "two", input("two"))).status).toBe(409);
  });

  it("maps the container's view of the shared volume to where the files really are", async () => {
    const s = await start({ pathMap: { from: "/shared", to: dir } });
    const body = { input: { video_path: "/shared/avatar.mp4", audio_path: "/shared/voice.wav", output_path: "/shared/out/mapped.mp4", aspect_ratio: "1:1", resolution: "480p", params: {} } };
    await put(s, "job-mapped", body);
    expect(await s.waitForPrediction("job-mapped")).toMatchObject({ status: "succeeded", output: { video_path: "/shared/out/mapped.mp4" } });
    expect(existsSync(join(dir, "out", "mapped.mp4"))).toBe(true);
  });

  it("fails a run whose input files are missing from the shared volume", async () => {
    const s = await start();
    const body = input("job-missing");
    body.input.video_path = join(dir, "does-not-exist.mp4");
    await put(s, "job-missing", body);
    expect((await s.waitForPrediction("job-missing")).error).toMatchObject({ error_type: "processing_error", stage: "preprocessing" });
  });
});

async function generate(s: FakeInferenceServer, body: unknown, signal?: AbortSignal): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${s.url}/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal });
  return { status: res.status, body: await res.json() };
}

/** The id of a named test job: /generate takes UUIDs only, and a stable one names the output file. */
function uuidFor(name: string): string {
  const h = createHash("sha256").update(name).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function genBody(name: string, params: Record<string, unknown> = {}, videoName = "avatar.mp4") {
  return { musetalk_job_id: uuidFor(name), video_url: files.urlFor(videoName), audio_url: files.urlFor("voice.wav"), aspect_ratio: "9:16", resolution: "480p", params };
}

describe("fake inference server, original /generate contract", () => {
  it("answers /hc and makes a downloadable output with the original hybrid metrics", async () => {
    const s = await start();
    expect(await (await fetch(`${s.url}/hc`)).json()).toEqual({ status: "ok" });
    const res = await generate(s, genBody("gen-ok"));
    expect(res.status).toBe(200);
    const ok = GenerateSuccess.parse(res.body);
    expect(Object.keys(ok.metrics).sort()).toEqual(
      ["GENERATION_TIME_SEC", "PEAK_RAM_KB", "PEAK_VRAM_MIB", "SCRIPT_WALL_TIME_SEC", "gpu_class", "stage_times", "total_time"],
    );
    expect(Object.keys(ok.metrics.stage_times as object).sort()).toEqual(["download", "inference", "upload", "validation"]);
    const out = await fetch(ok.output_url);
    expect(out.status).toBe(200);
    const saved = join(s.outputDir, `${uuidFor("gen-ok")}.mp4`);
    expect(await probeMedia(saved)).toMatchObject({ hasVideo: true, hasAudio: true });
  });

  it.each([
    ["no_face", 422, "media_error", false],
    ["fail", 500, "processing_error", false],
    ["oom", 500, "processing_error", true],
  ] as const)("answers %s with %i and a structured %s body", async (mode, status, errorType, retryable) => {
    const s = await start();
    const res = await generate(s, genBody(`gen-${mode}`, { fake: mode }));
    expect(res.status).toBe(status);
    expect(GenerateFailure.parse(res.body)).toMatchObject({ status: "failed", error_type: errorType, retryable });
  });

  it("reports a failed download and a corrupt input as media errors, and a bad body FastAPI-style", async () => {
    const s = await start();
    const missing = await generate(s, { ...genBody("gen-404"), video_url: files.urlFor("nope.mp4") });
    expect(missing.status).toBe(422);
    expect(GenerateFailure.parse(missing.body)).toMatchObject({ error_type: "media_error", stage: "download" });
    const corrupt = await generate(s, genBody("gen-corrupt", {}, "corrupt.mp4"));
    expect(GenerateFailure.parse(corrupt.body)).toMatchObject({ error_type: "media_error", stage: "validation" });
    const bad = await generate(s, { musetalk_job_id: "x" });
    expect(bad.status).toBe(422);
    expect(bad.body).toHaveProperty("detail");
  });

  it("can hold /hc unanswered while /generate runs, as the original image did", async () => {
    const s = await start({ blockHcWhileGenerating: true, durationMs: 800 });
    const running = generate(s, genBody("gen-blocking"));
    while (!s.requests.some((r) => r.path === "/generate" && r.body !== undefined)) await new Promise((r) => setTimeout(r, 10));
    await expect(fetch(`${s.url}/hc`, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect((await running).status).toBe(200);
    expect((await fetch(`${s.url}/hc`)).status).toBe(200);
  });

  it("returns a success whose output does not exist in crash mode, and holds the request open in hang mode", async () => {
    const s = await start();
    const crash = GenerateSuccess.parse((await generate(s, genBody("gen-crash", { fake: "crash_exit_0_without_output" }))).body);
    expect((await fetch(crash.output_url)).status).toBe(404);
    const hung = await generate(s, genBody("gen-hang", { fake: "hang" }), AbortSignal.timeout(600)).catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(Error);
    expect((await fetch(`${s.url}/hc`)).status).toBe(200);
  });
});
