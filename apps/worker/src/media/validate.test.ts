import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeCorruptFile, makeTestAudio, makeTestVideo, runProcess, testMediaTools } from "@fleet/testing/media";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type MediaLimits } from "../config.js";
import { JobError } from "../errors/job-error.js";
import { validateInputs } from "./validate.js";

let dir: string;
const f = (name: string) => path.join(dir, name);
const defaults = loadConfig({}).limits;
const opts = (limits: Partial<MediaLimits> = {}) => ({
  ffprobePath: testMediaTools().ffprobe.path,
  timeoutMs: 30_000,
  limits: { ...defaults.media, maxDurationSec: 60, ...limits },
  bounds: defaults.ffmpeg,
  signal: new AbortController().signal,
});

async function ffmpeg(args: string[]): Promise<void> {
  const res = await runProcess(testMediaTools().ffmpeg.path, ["-hide_banner", "-loglevel", "error", "-y", ...args]);
  if (res.code !== 0) throw new Error(`ffmpeg failed: ${res.stderr}`);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-validate-"));
  await Promise.all([
    makeTestVideo(f("video.mp4"), { seconds: 1 }),
    makeTestAudio(f("voice.wav"), { seconds: 2 }),
    makeCorruptFile(f("corrupt.bin")),
    writeFile(f("tiny.bin"), Buffer.alloc(10)),
    // A file of "the box" a playlist would smuggle into the output: a real, decodable video.
    ffmpeg(["-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=15", "-c:v", "libx264", "-pix_fmt", "yuv420p", f("box-secret.ts")]),
    // 10000x10000 pixels in 33 KB: decoding it for the engine takes gigabytes.
    ffmpeg(["-f", "lavfi", "-i", "color=c=white:size=10000x10000", "-frames:v", "1", "-pix_fmt", "monob", f("pixel-bomb.png")]),
    ffmpeg(["-f", "lavfi", "-i", "testsrc=duration=1:size=32x32:rate=1000", "-c:v", "libx264", "-pix_fmt", "yuv420p", f("fast.mkv")]),
    ffmpeg(["-f", "lavfi", "-i", "testsrc=duration=5:size=64x48:rate=60", "-c:v", "libx264", "-pix_fmt", "yuv420p", f("many-frames.mp4")]),
  ]);
  // Padded past the 1000-byte floor so only the format check can refuse them. Both name files by
  // absolute path, as an attacker who guessed a path on the GPU box would.
  const pad = `${"#".repeat(1200)}\n`;
  await writeFile(f("playlist"), `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\nfile://${f("box-secret.ts")}\n#EXT-X-ENDLIST\n${pad}`);
  await writeFile(f("concat-list"), `ffconcat version 1.0\nfile box-secret.ts\n${pad}`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function mediaError(p: Promise<unknown>): Promise<JobError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(JobError);
  expect((err as JobError).info).toMatchObject({ error_type: "media_error", stage: "validation", retryable: false, fault: "job" });
  return err as JobError;
}

describe("validateInputs", () => {
  it("accepts a video with a picture and a voice with sound, and reports their facts", async () => {
    const media = await validateInputs({ video: f("video.mp4"), audio: f("voice.wav") }, opts());
    expect(media.video?.video).toMatchObject({ width: 160, height: 120 });
    expect(media.video?.demuxer).toBe("mov");
    expect(media.audio.durationSec).toBeCloseTo(2, 1);
  });

  it("checks only the voice when there is no video file (the engine keeps the avatar prepared)", async () => {
    const media = await validateInputs({ video: null, audio: f("voice.wav") }, opts());
    expect(media.video).toBeNull();
    expect(media.audio.durationSec).toBeCloseTo(2, 1);
    const err = await mediaError(validateInputs({ video: null, audio: f("video.mp4") }, opts()));
    expect(err.message).toMatch(/audio/);
  });

  it("rejects a file ffprobe cannot read as a media error, keeping ffprobe's words", async () => {
    const err = await mediaError(validateInputs({ video: f("corrupt.bin"), audio: f("voice.wav") }, opts()));
    expect(err.message).toMatch(/Invalid video file: ffprobe failed/);
    expect(err.info.details).toHaveProperty("ffprobe_stderr");
  });

  it("rejects a file under 1000 bytes, as the original did", async () => {
    const err = await mediaError(validateInputs({ video: f("video.mp4"), audio: f("tiny.bin") }, opts()));
    expect(err.info.details).toMatchObject({ size: 10, min_size: 1000 });
  });

  it("rejects a voice file that has no audio stream (the original never checked)", async () => {
    const err = await mediaError(validateInputs({ video: f("video.mp4"), audio: f("video.mp4") }, opts()));
    expect(err.message).toMatch(/no audio stream/);
  });

  it("rejects an avatar that has no picture", async () => {
    const err = await mediaError(validateInputs({ video: f("voice.wav"), audio: f("voice.wav") }, opts()));
    expect(err.message).toMatch(/no video stream/);
  });

  it("rejects inputs longer than the duration limit", async () => {
    const err = await mediaError(validateInputs({ video: f("video.mp4"), audio: f("voice.wav") }, opts({ maxDurationSec: 1.5 })));
    expect(err.message).toMatch(/limit/);
  });
});

describe("hostile media", () => {
  it("refuses an HLS playlist that points at a file of the box, naming the format", async () => {
    const started = Date.now();
    const err = await mediaError(validateInputs({ video: f("playlist"), audio: f("voice.wav") }, opts()));
    // Refused before anything is decoded either way: ffprobe names the hls demuxer and the
    // allow-list refuses it, or (newer ffprobe builds) hls is never detected without an .m3u8
    // name and the file is not media at all.
    expect(err.message).toMatch(/format hls is not allowed|Invalid video file: ffprobe failed/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("refuses a concat list", async () => {
    const err = await mediaError(validateInputs({ video: f("concat-list"), audio: f("voice.wav") }, opts()));
    expect(err.message).toMatch(/format concat is not allowed/);
  });

  it("refuses a pixel bomb by its dimensions before anything decodes it", async () => {
    const err = await mediaError(validateInputs({ video: f("pixel-bomb.png"), audio: f("voice.wav") }, opts()));
    expect(err.info.details).toMatchObject({ fact: "width", value: 10_000, limit: 4096 });
  });

  it("refuses a pixel count over MEDIA_MAX_PIXELS even when each side is allowed", async () => {
    const err = await mediaError(validateInputs({ video: f("video.mp4"), audio: f("voice.wav") }, opts({ maxPixels: 160 * 120 - 1 })));
    expect(err.info.details).toMatchObject({ fact: "pixel count", value: 160 * 120 });
  });

  it("refuses a frame rate over the limit", async () => {
    const err = await mediaError(validateInputs({ video: f("fast.mkv"), audio: f("voice.wav") }, opts()));
    expect(err.info.details).toMatchObject({ fact: "frame rate", value: 1000, limit: 120 });
  });

  it("refuses a frame count over the limit", async () => {
    const err = await mediaError(validateInputs({ video: f("many-frames.mp4"), audio: f("voice.wav") }, opts({ maxFrames: 100 })));
    expect(err.info.details).toMatchObject({ fact: "frame count", value: 300, limit: 100 });
  });
});
