import type { FileServer } from "@fleet/testing/file-server";
import type { JobInput } from "../pipeline/job-input.js";

/** A claimed job whose inputs are `/avatar.mp4` and `/voice.wav` on a test file server. */
export function testJobInput(files: FileServer, over: Partial<JobInput> = {}): JobInput {
  return {
    attemptId: "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70",
    bufferJobId: "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70",
    jobId: "9a1f2b3c-4d5e-4f70-8b7d-3f1c2a4e6f70",
    attempt: 1,
    videoUrl: files.urlFor("/avatar.mp4"),
    audioUrl: files.urlFor("/voice.wav"),
    aspectRatio: "1:1",
    resolution: "512x512",
    params: {},
    videoSha256: null,
    ...over,
  };
}
