import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeCorruptFile, makeTestAudio, makeTestVideo, testMediaTools } from "@fleet/testing/media";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobError } from "./job-error.js";
import { validateInputs } from "./validate.js";

let dir: string;
const f = (name: string) => path.join(dir, name);
const opts = { ffprobePath: testMediaTools().ffprobe.path, timeoutMs: 30_000, maxDurationSec: 60, signal: new AbortController().signal };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fleet-validate-"));
  await Promise.all([
    makeTestVideo(f("video.mp4"), { seconds: 1 }),
    makeTestAudio(f("voice.wav"), { seconds: 2 }),
    makeCorruptFile(f("corrupt.bin")),
    writeFile(f("tiny.bin"), Buffer.alloc(10)),
  ]);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function mediaError(p: Promise<unknown>): Promise<JobError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(JobError);
  expect((err as JobError).info).toMatchObject({ error_type: "media_error", stage: "validation", retryable: false });
  return err as JobError;
}

describe("validateInputs", () => {
  it("accepts a video with a picture and a voice with sound, and reports their facts", async () => {
    const media = await validateInputs({ video: f("video.mp4"), audio: f("voice.wav") }, opts);
    expect(media.video.video).toMatchObject({ width: 160, height: 120 });
    expect(media.audio.durationSec).toBeCloseTo(2, 1);
  });

  it("rejects a file ffprobe cannot read as a media error, keeping ffprobe's words", async () => {
    const err = await mediaError(validateInputs({ video: f("corrupt.bin"), audio: f("voice.wav") }, opts));
    expect(err.message).toMatch(/Invalid video file: ffprobe failed/);
    expect(err.info.details).toHaveProperty("ffprobe_stderr");
  });

  it("rejects a file under 1000 bytes, as the original did", async () => {
    const err = await mediaError(validateInputs({ video: f("video.mp4"), audio: f("tiny.bin") }, opts));
    expect(err.info.details).toMatchObject({ size: 10, min_size: 1000 });
  });

  it("rejects a voice file that has no audio stream (the original never checked)", async () => {
    const err = await mediaError(validateInputs({ video: f("video.mp4"), audio: f("video.mp4") }, opts));
    expect(err.message).toMatch(/no audio stream/);
  });

  it("rejects an avatar that has no picture", async () => {
    const err = await mediaError(validateInputs({ video: f("voice.wav"), audio: f("voice.wav") }, opts));
    expect(err.message).toMatch(/no video stream/);
  });

  it("rejects inputs longer than the duration limit", async () => {
    const err = await mediaError(validateInputs({ video: f("video.mp4"), audio: f("voice.wav") }, { ...opts, maxDurationSec: 1.5 }));
    expect(err.message).toMatch(/limit/);
  });
});
