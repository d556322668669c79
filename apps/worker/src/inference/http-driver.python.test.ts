// Over 250 lines on purpose: one suite around one Python server process started once (its
// launcher and the media it reads are the first half); splitting it would start the server twice.
import { freePort } from "@fleet/testing/free-port";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startFileServer } from "@fleet/testing/file-server";
import { makeTestAudio, makeTestVideo, probeMedia, testMediaTools } from "@fleet/testing/media";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { JobAbortedError, JobError } from "../errors/job-error.js";
import { validateInputs } from "../media/validate.js";
import { fetchInputs } from "../pipeline/avatar-source.js";
import { createDownloadAgent } from "../pipeline/download.js";
import type { JobInput } from "../pipeline/job-input.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { createHttpDriver } from "./http-driver.js";
import type { FileInferenceTask } from "./inference-driver.js";

const defaults = loadConfig({}).limits;

// The worker's `http` driver against the inference server we ship (docker/inference/server.py,
// Debian's python3), not the TypeScript fake: a contract drift between the two fails here.
// First with the fake engine (ffmpeg loop + mux, failure switches), then with the real MuseTalk
// engine module on CPU with stand-in models (INFERENCE_ENGINE=standin, needs python3-torch and
// python3-opencv, which CI installs).

const repoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const serverPy = path.join(repoDir, "docker/inference/server.py");
const PYTHON = "/usr/bin/python3";
const WAIT_MS = 120_000;

interface PythonServer {
  url: string;
  port: number;
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const servers: PythonServer[] = [];
const drivers: Array<{ close(): Promise<void> }> = [];
let workDir: string;
let jobDir: string;
let n = 0;

async function startServer(env: Record<string, string>, port = 0): Promise<PythonServer> {
  const proc = spawn(PYTHON, [serverPy], {
    env: {
      ...process.env,
      INFERENCE_PORT: String(port),
      INFERENCE_HOST: "127.0.0.1",
      INFERENCE_WORK_ROOT: workDir,
      INFERENCE_JOBS_DIR: path.join(workDir, ".inference"),
      PYTHONDONTWRITEBYTECODE: "1",
      // The server's own ffmpeg/ffprobe: the same ones the worker's tests resolved.
      FFMPEG_BIN: testMediaTools().ffmpeg.path,
      FFPROBE_BIN: testMediaTools().ffprobe.path,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  let buffered = "";
  let stderr = "";
  proc.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = new Promise<number>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`server.py exited ${code} before listening: ${stderr.slice(-2000)}`)));
    proc.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const record = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>;
        buffered = buffered.slice(newline + 1);
        lines.push(record);
        if (record.msg === "inference_server_listening") resolve(record.port as number);
      }
    });
  });
  const bound = await listening;
  const exited = new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : proc.once("exit", () => resolve())));
  const server: PythonServer = {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    proc,
    lines,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, signal);
      await exited;
    },
  };
  servers.push(server);
  return server;
}

function driver(server: PythonServer, opts: { timeoutMs?: number; pollMs?: number } = {}) {
  const d = createHttpDriver({
    url: server.url,
    workDir,
    workDirInEngine: workDir,
    timeoutMs: opts.timeoutMs ?? WAIT_MS,
    pollMs: opts.pollMs ?? 50,
    batchSize: 4,
    log: captureLogger().log,
  });
  drivers.push(d);
  return d;
}

async function task(
  video: string,
  audio: string,
  signal: AbortSignal,
  params: Record<string, unknown> = {},
  progress: number[] = [],
): Promise<FileInferenceTask> {
  n += 1;
  const media = await validateInputs({ video, audio }, { ffprobePath: testMediaTools().ffprobe.path, timeoutMs: 30_000, limits: defaults.media, bounds: defaults.ffmpeg, signal });
  return {
    jobId: `job-${n}`,
    attemptId: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    videoPath: video,
    videoSha256: null,
    audioPath: audio,
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

async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function prediction(server: PythonServer, id: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}/predictions/${id}`);
  return (await res.json()) as Record<string, unknown>;
}

let video: string;
let video2997: string;
let blackVideo: string;
let audio: string;
let longAudio: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "fleet-http-python-"));
  jobDir = path.join(workDir, "jobs", "j1");
  await mkdir(jobDir, { recursive: true });
  video = path.join(jobDir, "avatar.mp4");
  video2997 = path.join(jobDir, "avatar-2997.mp4");
  blackVideo = path.join(jobDir, "black.mp4");
  audio = path.join(jobDir, "voice.wav");
  longAudio = path.join(jobDir, "long-voice.wav");
  await Promise.all([
    makeTestVideo(video, { seconds: 1, width: 192, height: 160, fps: 25 }),
    makeTestVideo(video2997, { seconds: 1.2, width: 192, height: 160, fps: 29.97 }),
    makeTestAudio(audio, { seconds: 1.5 }),
    makeTestAudio(longAudio, { seconds: 20 }),
  ]);
  execFileSync(testMediaTools().ffmpeg.path, ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:size=192x160:rate=25:duration=1",
    "-c:v", "libx264", "-pix_fmt", "yuv420p", blackVideo]);
});
afterEach(async () => {
  for (const d of drivers.splice(0)) await d.close();
  for (const s of servers.splice(0)) await s.stop("SIGKILL");
});
afterAll(() => rm(workDir, { recursive: true, force: true }));

// Each test starts a Python server (the CPU engine loads PyTorch): on a loaded 2-core box that
// alone can take a minute, so a test's ceiling sits above waitFor's own (WAIT_MS).
const TEST_TIMEOUT_MS = WAIT_MS + 60_000;

describe("http driver against docker/inference/server.py (fake engine)", { timeout: TEST_TIMEOUT_MS }, () => {
  it("reads STARTING while the engine loads, then READY, with the engine's name and lip_sync", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "fake", FAKE_ENGINE_LOAD_SEC: "5" });
    const d = driver(server);
    const signal = new AbortController().signal;
    expect(await d.health({ signal, busy: false })).toMatchObject({ driver: "http", state: "starting" });
    const ready = await waitFor("ready", async () => {
      const h = await d.health({ signal, busy: false });
      return h.state === "ready" && h;
    });
    expect(ready).toMatchObject({ lip_sync: false });
    expect(ready.detail).toContain("fake");
  });

  it("runs a prediction end to end: progress between 0 and 1, a real output, the engine's metrics", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "fake", FAKE_ENGINE_STEP_SEC: "0.05" });
    const progress: number[] = [];
    const t = await task(video, audio, new AbortController().signal, {}, progress);
    const result = await driver(server).infer(t);
    const out = await probeMedia(t.outputPath);
    expect(out).toMatchObject({ hasVideo: true, hasAudio: true });
    expect(out.durationSec).toBeCloseTo(1.5, 0);
    expect(progress.some((p) => p > 0 && p < 1)).toBe(true);
    expect(progress.at(-1)).toBe(1);
    expect(result.metrics).toMatchObject({ driver: "http", engine: "fake", lip_sync: false });
    // The server's own record of it, on its JSON-lines stdout (every line parsed as JSON).
    expect(server.lines.filter((l) => l.id === t.attemptId).map((l) => l.msg)).toEqual(
      expect.arrayContaining(["prediction_accepted", "prediction_started", "prediction_succeeded"]),
    );
  });

  it("cancels the prediction in the engine when the job is aborted", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "fake", FAKE_ENGINE_STEP_SEC: "0.5", FAKE_ENGINE_STEPS: "40" });
    const controller = new AbortController();
    const t = await task(video, audio, controller.signal);
    const run = driver(server).infer(t);
    await waitFor("processing", async () => (await prediction(server, t.attemptId)).status === "processing");
    controller.abort("cancelled");
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAbortedError);
    expect(await waitFor("canceled", async () => (await prediction(server, t.attemptId)).status === "canceled")).toBe(true);
  });

  it("keeps CUDA out-of-memory retryable and a face-less avatar a non-retryable media error", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "fake", FAKE_ENGINE_STEP_SEC: "0" });
    const oom = await jobError(driver(server).infer(await task(video, audio, new AbortController().signal, { fake_mode: "oom" })));
    expect(oom.info).toMatchObject({ error_type: "processing_error", stage: "inference", retryable: true });
    expect(oom.message).toMatch(/out of memory/i);
    const noFace = await jobError(driver(server).infer(await task(video, audio, new AbortController().signal, { fake_mode: "no_face" })));
    expect(noFace.info).toMatchObject({ error_type: "media_error", retryable: false });
  });

  it("refuses a concat list that passed as mp4 as a media error, without decoding it", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "fake", FAKE_ENGINE_STEP_SEC: "0" });
    const good = await task(video, audio, new AbortController().signal);
    const listing = path.join(jobDir, "list.mp4");
    await writeFile(listing, `ffconcat version 1.0\nfile '${path.basename(video)}'\n`.padEnd(1200, "\n"));
    const err = await jobError(driver(server).infer({ ...good, videoPath: listing }));
    expect(err.info).toMatchObject({ error_type: "media_error", stage: "validation", retryable: false });
    expect(err.message).toContain("'concat' is not accepted");
  });

  it("ends the attempt as retryable, naming the cause, when the engine restarts mid-prediction", async () => {
    const port = await freePort();
    const env = { INFERENCE_ENGINE: "fake", FAKE_ENGINE_STEP_SEC: "0.5", FAKE_ENGINE_STEPS: "40" };
    const first = await startServer(env, port);
    const progress: number[] = [];
    const t = await task(video, audio, new AbortController().signal, {}, progress);
    const run = driver(first, { pollMs: 200 }).infer(t);
    await waitFor("processing", async () => (await prediction(first, t.attemptId)).status === "processing");
    // The driver has the PUT's answer once it reports progress: a kill before that would make it
    // send the PUT again, to the restarted engine, which then runs the prediction afresh.
    await waitFor("polling", () => Promise.resolve(progress.length > 0));
    await first.stop("SIGKILL"); // what the host's OOM killer does
    await startServer(env, port); // the restart policy brings it back, without the prediction
    const err = await jobError(run);
    expect(err.info).toMatchObject({ error_type: "processing_error", stage: "inference", retryable: true });
    expect(err.info.details).toMatchObject({ cause: "engine_restarted", prediction_id: t.attemptId });
  });

  it("reports a non-numeric engine setting as an engine error naming the variable", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "fake", FAKE_ENGINE_STEPS: "ten" });
    const d = driver(server);
    const health = await waitFor("error", async () => {
      const h = await d.health({ signal: new AbortController().signal, busy: false });
      return h.state === "error" && h;
    });
    expect(health.detail).toContain("FAKE_ENGINE_STEPS");
    const err = await jobError(d.infer(await task(video, audio, new AbortController().signal)));
    expect(err.info).toMatchObject({ error_type: "processing_error", retryable: true });
  });
});

/**
 * The stand-in engine needs PyTorch and OpenCV. CI installs them and always runs these tests; on a
 * machine without them (a laptop with only Node) they are skipped, and the skip names the reason.
 */
const engineModules = (() => {
  try {
    execFileSync(PYTHON, ["-c", "import torch, cv2"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const skipEngine = !engineModules && !process.env.CI;

describe.skipIf(skipEngine)("http driver against docker/inference/server.py (the MuseTalk engine on CPU, stand-in models; needs python3-torch and python3-opencv)", { timeout: TEST_TIMEOUT_MS }, () => {
  it("turns a 29.97 fps avatar into a 25 fps output exactly as long as the voice", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "standin" });
    const d = driver(server, { pollMs: 100 });
    await waitFor("ready", async () => (await d.health({ signal: new AbortController().signal, busy: false })).state === "ready");
    const progress: number[] = [];
    const t = await task(video2997, audio, new AbortController().signal, {}, progress);
    const result = await d.infer(t);
    const out = await probeMedia(t.outputPath);
    expect(out).toMatchObject({ hasVideo: true, hasAudio: true });
    expect(Math.abs((out.durationSec ?? 0) - 1.5)).toBeLessThanOrEqual(1 / 25 + 0.03);
    expect(result.metrics).toMatchObject({
      engine: "musetalk-v15-standin", device: "cpu", fps: 25, frames: 37, source_frames: 30, frames_without_face: 0, batch_size: 4,
    });
    expect(progress.some((p) => p > 0 && p < 1)).toBe(true);
  });

  it("cancels a running CPU job and maps a face-less avatar to a media error", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "standin" });
    const d = driver(server, { pollMs: 100 });
    await waitFor("ready", async () => (await d.health({ signal: new AbortController().signal, busy: false })).state === "ready");
    const noFace = await jobError(d.infer(await task(blackVideo, audio, new AbortController().signal)));
    expect(noFace.info).toMatchObject({ error_type: "media_error", retryable: false });
    expect(noFace.message).toMatch(/no face/);

    // 20 s of voice is 500 frames: far more than the time it takes to see it running and abort.
    const controller = new AbortController();
    const t = await task(video, longAudio, controller.signal);
    const run = d.infer(t);
    await waitFor("processing", async () => (await prediction(server, t.attemptId)).status === "processing");
    controller.abort("cancelled");
    expect(await run.catch((e: unknown) => e)).toBeInstanceOf(JobAbortedError);
    expect(await waitFor("canceled", async () => (await prediction(server, t.attemptId)).status === "canceled")).toBe(true);
  });

  it("skips the avatar's download once the engine keeps it: the second job naming the hash requests no video and hits the cache", async () => {
    const server = await startServer({ INFERENCE_ENGINE: "standin", INFERENCE_AVATAR_CACHE_DIR: path.join(workDir, ".avatar-cache") });
    const d = driver(server, { pollMs: 100 });
    await waitFor("ready", async () => (await d.health({ signal: new AbortController().signal, busy: false })).state === "ready");
    const files = await startFileServer(jobDir);
    const agent = createDownloadAgent({ allowPrivate: true, connectTimeoutMs: 2_000 });
    try {
      const sha = createHash("sha256").update(await readFile(video)).digest("hex");
      const signal = new AbortController().signal;
      // The worker's own steps between claim and upload: ask-or-download, validate, infer.
      const runOne = async (k: number) => {
        const dir = path.join(workDir, "jobs", `hash-${k}`);
        await mkdir(dir, { recursive: true });
        const paths = { video: path.join(dir, "input-video"), audio: path.join(dir, "input-audio") };
        const input: JobInput = {
          attemptId: `hash-${k}`, bufferJobId: null, jobId: `hash-${k}`, attempt: 1, videoUrl: files.urlFor(`/${path.basename(video)}`),
          audioUrl: files.urlFor(`/${path.basename(audio)}`), aspectRatio: "9:16", resolution: "720p", params: {}, videoSha256: sha,
        };
        const limits = { maxBytes: defaults.maxInputBytes, timeoutMs: 30_000, attempts: 1, allowPrivate: true };
        const fetched = await fetchInputs({ input, driver: d, files: paths, limits, dispatcher: agent, signal, log: captureLogger().log });
        const media = await validateInputs({ video: fetched.videoPath, audio: paths.audio }, { ffprobePath: testMediaTools().ffprobe.path, timeoutMs: 30_000, limits: defaults.media, bounds: defaults.ffmpeg, signal });
        const outputPath = path.join(dir, "output.mp4");
        const { metrics } = await d.infer({
          jobId: input.jobId, attemptId: input.attemptId, videoPath: fetched.videoPath, videoSha256: sha, audioPath: paths.audio, outputPath,
          video: media.video, audio: media.audio, aspectRatio: "9:16", resolution: "720p", params: {}, signal, onProgress: () => undefined,
        });
        return { source: fetched.source, cache: metrics.avatar_cache, duration: (await probeMedia(outputPath)).durationSec };
      };
      const videoRequests = () => files.requests.filter((r) => r.path === `/${path.basename(video)}`).length;
      expect(await d.avatar(sha, signal)).toBe("send_it");
      expect(await runOne(1)).toMatchObject({ source: "downloaded_checked", cache: "miss" });
      expect(videoRequests()).toBe(1);
      expect(await d.avatar(sha, signal)).toBe("have_it");
      const second = await runOne(2);
      expect(second).toMatchObject({ source: "engine_cache", cache: "hit" });
      expect(Math.abs((second.duration ?? 0) - 1.5)).toBeLessThanOrEqual(1 / 25 + 0.03);
      expect(videoRequests()).toBe(1);
      expect(files.requests.filter((r) => r.path === `/${path.basename(audio)}`)).toHaveLength(2);
      // What the worker's gauges read: the engine's own count of the two lookups.
      expect((await d.health({ signal, busy: false })).avatar_cache).toMatchObject({ entries: 1, hits: 1, misses: 1, hit_rate: 0.5 });
    } finally {
      await files.close();
      await agent.close();
    }
  });
});
