import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { JobError } from "../errors/job-error.js";
import { createFfmpegDriver } from "../inference/ffmpeg-driver.js";
import type { FileInferenceDriver } from "../inference/inference-driver.js";
import { captureLogger } from "../test-support/capture-logger.js";
import { testJobInput } from "../test-support/job-input.js";
import { fetchInputs } from "./avatar-source.js";
import { createDownloadAgent } from "./download.js";
import type { JobInput } from "./job-input.js";

let media: string;
let work: string;
let files: FileServer;
let avatarSha: string;
const agent = createDownloadAgent({ allowPrivate: true, connectTimeoutMs: 2_000 });
const config = loadConfig({ ALLOW_PRIVATE_NETWORK_URLS: "true" });
const limits = { maxBytes: config.limits.maxInputBytes, timeoutMs: 30_000, attempts: 1, allowPrivate: true };

beforeAll(async () => {
  media = await mkdtemp(path.join(tmpdir(), "fleet-avatar-source-media-"));
  await Promise.all([makeTestVideo(path.join(media, "avatar.mp4"), { seconds: 1 }), makeTestAudio(path.join(media, "voice.wav"), { seconds: 1 })]);
  avatarSha = createHash("sha256").update(await readFile(path.join(media, "avatar.mp4"))).digest("hex");
  files = await startFileServer(media);
});
beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), "fleet-avatar-source-"));
});
afterEach(() => rm(work, { recursive: true, force: true }));
afterAll(async () => {
  await files.close();
  await agent.close();
  await rm(media, { recursive: true, force: true });
});

/** The CPU engine (no avatar cache), answering the avatar question as told, and counting the asks. */
function engine(answer: "have_it" | "send_it"): { driver: FileInferenceDriver; asked: string[] } {
  const asked: string[] = [];
  const cpu = createFfmpegDriver({ timeoutMs: 10_000, log: captureLogger().log, bounds: config.limits.ffmpeg });
  return {
    asked,
    driver: {
      ...cpu,
      avatar(sha) {
        asked.push(sha);
        return Promise.resolve(answer);
      },
    },
  };
}

const input = (videoSha256: string | null): JobInput => testJobInput(files, { videoSha256 });

function fetch(job: JobInput, driver: FileInferenceDriver) {
  const paths = { video: path.join(work, "input-video"), audio: path.join(work, "input-audio") };
  return fetchInputs({ input: job, driver, files: paths, limits, dispatcher: agent, signal: new AbortController().signal, log: captureLogger().log });
}

const videoRequests = () => files.requests.filter((r) => r.path === "/avatar.mp4").length;
const audioRequests = () => files.requests.filter((r) => r.path === "/voice.wav").length;

describe("fetchInputs", () => {
  it("downloads both inputs of a job that names no hash, without asking the engine", async () => {
    const { driver, asked } = engine("have_it");
    const [videos, voices] = [videoRequests(), audioRequests()];
    expect(await fetch(input(null), driver)).toEqual({ videoPath: path.join(work, "input-video"), source: "downloaded" });
    expect([videoRequests() - videos, audioRequests() - voices, asked]).toEqual([1, 1, []]);
  });

  it("downloads no video when the engine has the avatar: only the voice is requested", async () => {
    const { driver, asked } = engine("have_it");
    const [videos, voices] = [videoRequests(), audioRequests()];
    expect(await fetch(input(avatarSha), driver)).toEqual({ videoPath: null, source: "engine_cache" });
    expect([videoRequests() - videos, audioRequests() - voices, asked]).toEqual([0, 1, [avatarSha]]);
    expect(await readdir(work)).toEqual(["input-audio"]);
  });

  it("downloads and checks the video when the engine says send it", async () => {
    const { driver } = engine("send_it");
    const videos = videoRequests();
    expect(await fetch(input(avatarSha), driver)).toEqual({ videoPath: path.join(work, "input-video"), source: "downloaded_checked" });
    expect(videoRequests() - videos).toBe(1);
  });

  it("fails a video whose bytes do not match the named hash as a media error", async () => {
    const { driver } = engine("send_it");
    const wrong = createHash("sha256").update("another avatar").digest("hex");
    const err = await fetch(input(wrong), driver).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobError);
    expect((err as JobError).info).toMatchObject({ error_type: "media_error", stage: "download", retryable: false, fault: "job" });
    expect((err as JobError).info.details).toMatchObject({ cause: "video_sha256_mismatch", video_sha256: wrong, actual_sha256: avatarSha });
  });
});
