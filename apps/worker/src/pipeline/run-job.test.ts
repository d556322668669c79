import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { createFfmpegDriver } from "../inference/ffmpeg-driver.js";
import { createLocalStorage } from "../storage/local-storage.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { testJobInput } from "../test-support/job-input.js";
import { createDownloadAgent } from "./download.js";
import { JobAbortedError } from "../errors/job-error.js";
import type { JobInput } from "./job-input.js";
import { runJob, type PipelineDeps } from "./run-job.js";

let media: string;
let workDir: string;
let files: FileServer;
const agent = createDownloadAgent({ allowPrivate: true, connectTimeoutMs: 2_000 });

beforeAll(async () => {
  media = await mkdtemp(path.join(tmpdir(), "fleet-runjob-media-"));
  await Promise.all([makeTestVideo(path.join(media, "avatar.mp4"), { seconds: 1 }), makeTestAudio(path.join(media, "voice.wav"), { seconds: 2 })]);
  files = await startFileServer(media);
});
afterEach(async () => {
  files.clearFaults();
  await rm(workDir, { recursive: true, force: true });
});
afterAll(async () => {
  await files.close();
  await agent.close();
  await rm(media, { recursive: true, force: true });
});

async function deps(): Promise<PipelineDeps> {
  workDir = await mkdtemp(path.join(tmpdir(), "fleet-runjob-"));
  const config = loadConfig({ WORK_DIR: workDir, ALLOW_PRIVATE_NETWORK_URLS: "true", DOWNLOAD_ATTEMPTS: "1" });
  const log = captureLogger().log;
  return {
    config,
    log,
    driver: createFfmpegDriver({ timeoutMs: 60_000, log, bounds: config.limits.ffmpeg, ffmpegPath: config.mediaTools.ffmpeg.path }),
    storage: createLocalStorage({ dir: path.join(workDir, "outputs"), baseUrl: () => "http://127.0.0.1:8000/outputs" }),
    downloadAgent: agent,
    gpuClass: "cpu",
    workerId: "w1",
    lipSync: () => false,
  };
}

const input = (over: Partial<JobInput> = {}): JobInput => testJobInput(files, over);

const jobDirs = async () => readdir(path.join(workDir, "jobs")).catch(() => []);

describe("runJob", () => {
  it("stores the output under {prefix}/{job id}.mp4 with metrics and removes its work dir", async () => {
    const progress: Array<[number, string]> = [];
    const outcome = await runJob(input(), await deps(), { signal: new AbortController().signal, onProgress: (p, phase) => progress.push([p, phase]) });
    expect(outcome).toMatchObject({ status: "succeeded", outputUrl: "http://127.0.0.1:8000/outputs/avatar/outputs/9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70.mp4" });
    if (outcome.status !== "succeeded") return;
    expect(outcome.metrics).toMatchObject({ gpu_class: "cpu", worker_id: "w1", lip_sync: false, output_key: "avatar/outputs/9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70.mp4" });
    expect(progress.map(([, phase]) => phase)).toEqual(expect.arrayContaining(["downloading", "validating", "uploading"]));
    expect(await jobDirs()).toEqual([]);
    expect((await readdir(path.join(workDir, "outputs/avatar/outputs"))).sort()).toEqual([
      "9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70.json",
      "9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70.mp4",
    ]);
  });

  it("stops the other download when one input fails, and still removes the work dir", async () => {
    files.fault("/avatar.mp4", { kind: "throttle", bytesPerSec: 2_000 });
    const outcome = await runJob(input({ audioUrl: files.urlFor("/missing.wav") }), await deps(), { signal: new AbortController().signal, onProgress: () => undefined });
    expect(outcome).toMatchObject({ status: "failed", errorInfo: { error_type: "download_error", stage: "download", retryable: false, fault: "job" } });
    if (outcome.status === "failed") expect(outcome.errorInfo.message).toMatch(/audio download failed: HTTP 404/);
    expect(await jobDirs()).toEqual([]);
  });

  it("checks a named video_sha256: a match runs and says so in the metrics, a mismatch is a media error that leaves nothing behind", async () => {
    const sha = createHash("sha256").update(await readFile(path.join(media, "avatar.mp4"))).digest("hex");
    const ok = await runJob(input({ videoSha256: sha }), await deps(), { signal: new AbortController().signal, onProgress: () => undefined });
    expect(ok).toMatchObject({ status: "succeeded", metrics: { avatar_source: "downloaded_checked" } });
    await rm(workDir, { recursive: true, force: true });

    const wrong = createHash("sha256").update("not this avatar").digest("hex");
    const outcome = await runJob(input({ videoSha256: wrong }), await deps(), { signal: new AbortController().signal, onProgress: () => undefined });
    expect(outcome).toMatchObject({ status: "failed", errorInfo: { error_type: "media_error", stage: "download", retryable: false, fault: "job" } });
    expect(await jobDirs()).toEqual([]);
    expect(await readdir(path.join(workDir, "outputs")).catch(() => [])).toEqual([]);
  });

  it("throws the abort reason instead of reporting a failure when the job is cancelled", async () => {
    files.fault("/avatar.mp4", { kind: "throttle", bytesPerSec: 2_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort("cancelled"), 200);
    const err = await runJob(input(), await deps(), { signal: controller.signal, onProgress: () => undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAbortedError);
    expect((err as JobAbortedError).reason).toBe("cancelled");
    expect(await jobDirs()).toEqual([]);
  });
});
