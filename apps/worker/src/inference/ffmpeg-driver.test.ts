import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeTestAudio, probeMedia, runProcess, testMediaTools } from "@fleet/testing/media";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobAbortedError } from "../errors/job-error.js";
import { validateInputs } from "../media/validate.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { createFfmpegDriver } from "./ffmpeg-driver.js";
import type { FileInferenceTask } from "./inference-driver.js";
import { loadConfig } from "../config.js";

const defaults = loadConfig({}).limits;

let dir: string;
const f = (name: string) => path.join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-ffmpeg-"));
  // An odd-sized avatar (phones make them); libx264 cannot encode it as is, so mpeg4 makes the input.
  const made = await runProcess(testMediaTools().ffmpeg.path, ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=161x121:rate=15", "-c:v", "mpeg4", f("video.mp4")]);
  expect(made.code).toBe(0);
  await makeTestAudio(f("voice.wav"), { seconds: 3.5 });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function task(output: string, signal: AbortSignal, progress: number[] = []): Promise<FileInferenceTask> {
  const media = await validateInputs({ video: f("video.mp4"), audio: f("voice.wav") }, { ffprobePath: testMediaTools().ffprobe.path, timeoutMs: 30_000, limits: defaults.media, bounds: defaults.ffmpeg, signal });
  return {
    jobId: "job", attemptId: "attempt", videoPath: f("video.mp4"), videoSha256: null, audioPath: f("voice.wav"), outputPath: output,
    video: media.video, audio: media.audio, aspectRatio: "1:1", resolution: "512x512", params: {}, signal,
    onProgress: (p) => progress.push(p),
  };
}

describe("ffmpeg driver (CPU development engine)", () => {
  it("says in its health that it makes no lip movement", async () => {
    const logs = captureLogger();
    const health = await createFfmpegDriver({ ffmpegPath: testMediaTools().ffmpeg.path, timeoutMs: 60_000, log: logs.log, bounds: defaults.ffmpeg }).health({ signal: new AbortController().signal, busy: false });
    expect(health).toMatchObject({ driver: "ffmpeg", state: "ready", lip_sync: false });
    expect(health.detail).toMatch(/NO lip movement/);
  });

  it("loops a 1 s avatar (odd-sized) to a 3.5 s voice: H.264 + AAC of the voice's length", async () => {
    const logs = captureLogger();
    const progress: number[] = [];
    const out = f("out.mp4");
    const result = await createFfmpegDriver({ ffmpegPath: testMediaTools().ffmpeg.path, timeoutMs: 60_000, log: logs.log, bounds: defaults.ffmpeg }).infer(await task(out, new AbortController().signal, progress));
    const probe = await probeMedia(out);
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: true, videoCodec: "h264", audioCodec: "aac", width: 160, height: 120 });
    expect(probe.durationSec).toBeGreaterThan(3.3);
    expect(probe.durationSec).toBeLessThan(3.8);
    expect(result.metrics).toMatchObject({ engine: "ffmpeg", lip_sync: false });
    expect(logs.messages("ffmpeg_engine_no_lip_sync")).toHaveLength(1);
    expect(progress.length).toBeGreaterThan(0);
  });

  it("kills ffmpeg when the job is aborted and reports the abort's reason", async () => {
    await makeTestAudio(f("long.wav"), { seconds: 120 });
    const controller = new AbortController();
    const t = await task(f("aborted.mp4"), controller.signal);
    const media = await validateInputs({ video: f("video.mp4"), audio: f("long.wav") }, { ffprobePath: testMediaTools().ffprobe.path, timeoutMs: 30_000, limits: defaults.media, bounds: defaults.ffmpeg, signal: controller.signal });
    const run = createFfmpegDriver({ ffmpegPath: testMediaTools().ffmpeg.path, timeoutMs: 60_000, log: captureLogger().log, bounds: defaults.ffmpeg }).infer({ ...t, audioPath: f("long.wav"), audio: media.audio });
    setTimeout(() => controller.abort("cancelled"), 300);
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAbortedError);
    expect((err as JobAbortedError).reason).toBe("cancelled");
  });
});
