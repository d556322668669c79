import { stat } from "node:fs/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loopVideoToAudio, makeCorruptFile, makeTestAudio, makeTestVideo, probeMedia } from "./media.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-media-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("media helpers", () => {
  it("makes a small H.264 test video of the requested size and length", async () => {
    const path = await makeTestVideo(join(dir, "v.mp4"), { seconds: 2, width: 128, height: 96, fps: 10 });
    const probe = await probeMedia(path);
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: false, width: 128, height: 96, videoCodec: "h264" });
    expect(probe.durationSec).toBeCloseTo(2, 0);
    expect((await stat(path)).size).toBeLessThan(200_000);
  });

  it("can give the test video a sound track", async () => {
    const probe = await probeMedia(await makeTestVideo(join(dir, "va.mp4"), { seconds: 1, withAudio: true }));
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: true });
  });

  it("makes a sine wav with no video stream", async () => {
    const probe = await probeMedia(await makeTestAudio(join(dir, "a.wav"), { seconds: 1.5 }));
    expect(probe).toMatchObject({ hasVideo: false, hasAudio: true, width: null });
    expect(probe.durationSec).toBeCloseTo(1.5, 1);
  });

  it("makes a corrupt file of at least 1000 bytes that ffprobe rejects", async () => {
    const path = await makeCorruptFile(join(dir, "bad.mp4"), 10);
    expect((await stat(path)).size).toBeGreaterThanOrEqual(1000);
    await expect(probeMedia(path)).rejects.toThrow(/ffprobe failed/);
  });

  it("loops a short video to the audio's length and muxes the audio in", async () => {
    const v = await makeTestVideo(join(dir, "short.mp4"), { seconds: 1 });
    const a = await makeTestAudio(join(dir, "long.wav"), { seconds: 2.5 });
    await loopVideoToAudio(v, a, join(dir, "looped.mp4"));
    const probe = await probeMedia(join(dir, "looped.mp4"));
    expect(probe).toMatchObject({ hasVideo: true, hasAudio: true });
    expect(probe.durationSec).toBeGreaterThan(2.3);
    expect(probe.durationSec).toBeLessThan(2.7);
  });
});
