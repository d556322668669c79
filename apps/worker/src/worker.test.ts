import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeCorruptFile, makeTestAudio, makeTestVideo, probeMedia } from "@fleet/testing/media";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { captureLogger } from "./test-support/capture-logger.js";
import { startWorker, type Worker } from "./worker.js";

let media: string;
let files: FileServer;
let workDir: string;
const workers: Worker[] = [];

beforeAll(async () => {
  media = await mkdtemp(path.join(tmpdir(), "fleet-worker-media-"));
  await Promise.all([
    makeTestVideo(path.join(media, "avatar.mp4"), { seconds: 1 }),
    makeTestAudio(path.join(media, "voice.wav"), { seconds: 3 }),
    makeCorruptFile(path.join(media, "corrupt.mp4")),
  ]);
  files = await startFileServer(media);
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.drain();
  await rm(workDir, { recursive: true, force: true });
});
afterAll(async () => {
  await files.close();
  await rm(media, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}) {
  workDir = await mkdtemp(path.join(tmpdir(), "fleet-worker-"));
  const logs = captureLogger();
  const config = loadConfig({ HOST: "127.0.0.1", PORT: "0", WORK_DIR: workDir, ALLOW_PRIVATE_NETWORK_URLS: "true", ...env });
  const worker = await startWorker(config, logs.log);
  workers.push(worker);
  return { worker, logs };
}

const JOB_ID = "0b9d6a1e-5c3f-4e2a-9d8b-7f6e5d4c3b2a";
const GENERATE_KEY = "gen-key";
const withKey = { "content-type": "application/json", "x-api-key": GENERATE_KEY };

const generateBody = (video = "/avatar.mp4") => ({
  musetalk_job_id: JOB_ID,
  video_url: files.urlFor(video),
  audio_url: files.urlFor("/voice.wav"),
  aspect_ratio: "9:16",
  resolution: "720p",
});

describe("worker without an orchestrator", () => {
  it("warns buffer_worker_disabled_missing_config, starts no loop, and still answers /hc", async () => {
    const { worker, logs } = await start({ BUFFER_WORKER_ID: "buffer-orch-local-2" });
    expect(logs.messages("buffer_worker_disabled_missing_config")[0]).toMatchObject({
      level: "warn",
      missing: ["BUFFER_ORCHESTRATOR_BASE_URL (or ORCHESTRATOR_BASE_URL)", "INTERNAL_API_KEY"],
    });
    expect(logs.messages("buffer_worker_loop_starting")).toHaveLength(0);
    const res = await fetch(`${worker.httpUrl}/hc`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    const health = (await (await fetch(`${worker.httpUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ buffer_loop: "missing_config", heartbeat: null });
  });

  it("serves the original POST /generate: a real video of the voice's length, playable from /outputs/", async () => {
    const { worker } = await start({ GENERATE_API_KEY: GENERATE_KEY });
    const res = await fetch(`${worker.httpUrl}/generate`, { method: "POST", headers: withKey, body: JSON.stringify(generateBody()) });
    const body = (await res.json()) as { status: string; output_url: string; musetalk_job_id: string; metrics: Record<string, unknown>; error: null };
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ status: "success", musetalk_job_id: JOB_ID, error: null });
    expect(body.output_url).toBe(`${worker.httpUrl}/outputs/avatar/outputs/${JOB_ID}.mp4`);
    expect(body.metrics).toMatchObject({ lip_sync: false, engine: "ffmpeg" });
    expect(body.metrics.stage_times).toHaveProperty("inference");
    const probe = await probeMedia(body.output_url);
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: true });
    expect(probe.durationSec).toBeCloseTo(3, 0);
    const sidecar = (await (await fetch(body.output_url.replace(/\.mp4$/, ".json"))).json()) as Record<string, unknown>;
    expect(sidecar).toMatchObject({ musetalk_job_id: JOB_ID, engine: "ffmpeg", lip_sync: false });
  });

  it("answers a corrupt input with the original's 422 media_error body", async () => {
    const { worker } = await start({ GENERATE_API_KEY: GENERATE_KEY });
    const res = await fetch(`${worker.httpUrl}/generate`, { method: "POST", headers: withKey, body: JSON.stringify(generateBody("/corrupt.mp4")) });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({
      status: "failed",
      error_type: "media_error",
      stage: "validation",
      retryable: false,
      error_message: "Invalid video file: ffprobe failed",
    });
  });

  it("rejects a request that breaks the schema with FastAPI's {detail:[...]} shape", async () => {
    const { worker } = await start({ GENERATE_API_KEY: GENERATE_KEY });
    const res = await fetch(`${worker.httpUrl}/generate`, { method: "POST", headers: withKey, body: JSON.stringify({ musetalk_job_id: "x", video_url: "not a url" }) });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { detail: Array<{ loc: string[] }> };
    expect(body.detail.map((d) => d.loc.at(-1))).toEqual(expect.arrayContaining(["musetalk_job_id", "video_url", "audio_url"]));
  });

  it("requires the key on /generate when GENERATE_API_KEY is set", async () => {
    const { worker } = await start({ GENERATE_API_KEY: "gen-key" });
    const denied = await fetch(`${worker.httpUrl}/generate`, { method: "POST", body: JSON.stringify(generateBody()) });
    expect(denied.status).toBe(401);
    await denied.body?.cancel();
  });

  it("exports Prometheus metrics that say the development engine makes no lip movement", async () => {
    const { worker } = await start();
    await expect.poll(async () => (await (await fetch(`${worker.httpUrl}/metrics`)).text()).includes('fleet_worker_engine_ready{driver="ffmpeg"} 1'), { timeout: 20_000 }).toBe(true);
    const text = await (await fetch(`${worker.httpUrl}/metrics`)).text();
    expect(text).toContain('fleet_worker_engine_lip_sync{driver="ffmpeg"} 0');
    expect(text).toContain("fleet_worker_jobs_running 0");
  });
});
