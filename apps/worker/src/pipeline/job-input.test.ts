import { describe, expect, it } from "vitest";
import { toJobInput, type WireJob } from "./job-input.js";

const wire: WireJob = {
  musetalk_job_id: "job-1",
  video_url: "http://127.0.0.1:9/v.mp4",
  audio_url: "http://127.0.0.1:9/a.wav",
  aspect_ratio: "9:16",
  resolution: "720p",
  params: { bbox_shift: 0 },
};

describe("toJobInput", () => {
  it("maps a claimed job with its buffer_job_id as the attempt id and fencing token", () => {
    expect(toJobInput(wire, { attemptId: "b-1", bufferJobId: "b-1", attempt: 2 })).toEqual({
      attemptId: "b-1",
      bufferJobId: "b-1",
      jobId: "job-1",
      attempt: 2,
      videoUrl: wire.video_url,
      audioUrl: wire.audio_url,
      aspectRatio: "9:16",
      resolution: "720p",
      params: { bbox_shift: 0 },
      videoSha256: null,
    });
  });

  it("carries a claimed job's video_sha256", () => {
    const sha = "ab".repeat(32);
    expect(toJobInput({ ...wire, video_sha256: sha }, { attemptId: "b-2", bufferJobId: "b-2", attempt: 1 }).videoSha256).toBe(sha);
  });

  it("maps a /generate call with no buffer job and no attempt number", () => {
    const input = toJobInput(wire, { attemptId: "generate-x", bufferJobId: null, attempt: null });
    expect(input).toMatchObject({ attemptId: "generate-x", bufferJobId: null, attempt: null, jobId: "job-1" });
  });
});
