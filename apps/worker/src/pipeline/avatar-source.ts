import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Dispatcher } from "undici";
import type { FileInferenceDriver } from "../inference/inference-driver.js";
import type { Logger } from "../logger.js";
import { JobAbortedError, JobError, abortReasonOf } from "../errors/job-error.js";
import { downloadToFile, redactUrl, type DownloadLimits } from "./download.js";
import type { JobInput } from "./job-input.js";

/**
 * How the avatar reached the engine: `engine_cache` (the job named its hash and the engine keeps
 * it prepared: not downloaded), `downloaded_checked` (named, downloaded, bytes match) or
 * `downloaded` (no hash named).
 */
export type AvatarSource = "engine_cache" | "downloaded_checked" | "downloaded";

export interface FetchedInputs {
  /** Null when the engine keeps the avatar: the task names it by `input.videoSha256` alone. */
  videoPath: string | null;
  source: AvatarSource;
}

/**
 * Brings the job's inputs into its work dir. A job that names its video's sha256 asks the engine
 * first; on `have_it` only the voice is downloaded. A downloaded video whose bytes do not hash to
 * the named value fails the job as a media_error (the client's hash or URL is wrong; another
 * attempt would download the same bytes). The caller removes the work dir whatever happens.
 */
export async function fetchInputs(opts: {
  input: JobInput;
  driver: FileInferenceDriver;
  files: { video: string; audio: string };
  limits: DownloadLimits;
  dispatcher: Dispatcher;
  signal: AbortSignal;
  log: Logger;
}): Promise<FetchedInputs> {
  const { input, files, signal, log } = opts;
  const download = (what: "video" | "audio") => (s: AbortSignal) =>
    downloadToFile({ url: what === "video" ? input.videoUrl : input.audioUrl, dest: files[what], what, limits: opts.limits, dispatcher: opts.dispatcher, signal: s, log });
  const sha = input.videoSha256;
  if (sha !== null && (await opts.driver.avatar(sha, signal)) === "have_it") {
    log.info({ videoSha256: sha }, "avatar_download_skipped");
    await downloadAll([download("audio")], signal);
    return { videoPath: null, source: "engine_cache" };
  }
  await downloadAll([download("video"), download("audio")], signal);
  if (sha === null) return { videoPath: files.video, source: "downloaded" };
  const actual = await fileSha256(files.video, signal);
  if (actual !== sha) {
    throw JobError.media("download", "the video's bytes do not match the job's video_sha256", {
      cause: "video_sha256_mismatch",
      video_sha256: sha,
      actual_sha256: actual,
      url: redactUrl(input.videoUrl),
    });
  }
  return { videoPath: files.video, source: "downloaded_checked" };
}

async function fileSha256(file: string, signal: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { signal })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * All inputs at once; when one fails the others are stopped, and all have settled before the
 * work dir is removed. The first real error wins over a sibling's abort.
 */
async function downloadAll(tasks: Array<(signal: AbortSignal) => Promise<unknown>>, jobSignal: AbortSignal): Promise<void> {
  const sibling = new AbortController();
  const signal = AbortSignal.any([jobSignal, sibling.signal]);
  const results = await Promise.allSettled(
    tasks.map((t) =>
      t(signal).catch((err: unknown) => {
        sibling.abort("released");
        throw err;
      }),
    ),
  );
  const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  if (errors.length === 0) return;
  if (jobSignal.aborted) throw new JobAbortedError(abortReasonOf(jobSignal));
  throw errors.find((e) => !(e instanceof JobAbortedError)) ?? errors[0];
}
