import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Dispatcher } from "undici";
import type { ErrorInfo, ErrorStage, JsonObject } from "@fleet/contract";
import type { Config, FfmpegBounds } from "../config.js";
import type { InferenceDriver } from "../inference/inference-driver.js";
import type { Logger } from "../logger.js";
import { outputKey, type OutputStorage } from "../storage/output-storage.js";
import { fetchInputs } from "./avatar-source.js";
import { redactUrl } from "./download.js";
import type { JobInput } from "./job-input.js";
import { JobAbortedError, JobError, abortReasonOf, throwIfAborted, toErrorInfo } from "../errors/job-error.js";
import { probeMedia, validateInputs, type MediaInfo } from "../media/validate.js";

export type JobOutcome =
  | { status: "succeeded"; outputUrl: string; metrics: JsonObject }
  | { status: "failed"; errorInfo: ErrorInfo; metrics: JsonObject };

export interface PipelineDeps {
  config: Config;
  log: Logger;
  driver: InferenceDriver;
  storage: OutputStorage;
  downloadAgent: Dispatcher;
  gpuClass: string;
  workerId: string;
  /** The engine's own lip-sync claim, for the metrics and the sidecar. */
  lipSync: () => boolean | null;
}

export type StageTimes = Partial<Record<"download" | "validation" | "inference" | "upload", number>>;

/**
 * download → validate → infer → upload, in a work directory of its own that is removed whatever
 * happens, so no job sees another's files or fills the disk with its leftovers.
 * Returns the outcome as data; throws only JobAbortedError, whose reason the runner reports.
 */
export async function runJob(
  input: JobInput,
  deps: PipelineDeps,
  ctx: { signal: AbortSignal; onProgress: (progress: number, phase: string, metrics?: JsonObject) => void },
): Promise<JobOutcome> {
  const { config, log, driver, storage } = deps;
  const jobLog = log.child({ jobId: input.jobId, bufferJobId: input.bufferJobId, attempt: input.attempt });
  const started = Date.now();
  const stageTimes: StageTimes = {};
  let stage: ErrorStage = "download";
  const dir = path.join(config.workDir, "jobs", input.attemptId);
  const timed = async <T>(name: keyof StageTimes, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      stageTimes[name] = (Date.now() - t0) / 1000;
    }
  };
  const baseMetrics = (): JsonObject => ({
    gpu_class: deps.gpuClass,
    worker_id: deps.workerId,
    driver: driver.name,
    lip_sync: deps.lipSync(),
    config_label: config.configLabel,
    batch_size: config.batchSize,
    stage_times: { ...stageTimes },
    total_time: (Date.now() - started) / 1000,
    worker_peak_rss_kb: process.resourceUsage().maxRSS,
  });

  jobLog.info({ engine: driver.name, video: redactUrl(input.videoUrl), audio: redactUrl(input.audioUrl) }, "worker_job_start");
  try {
    if (driver.input === "urls") {
      stage = "inference";
      const result = await timed("inference", () =>
        driver.generate({
          job: {
            musetalk_job_id: input.jobId,
            video_url: input.videoUrl,
            audio_url: input.audioUrl,
            aspect_ratio: input.aspectRatio,
            resolution: input.resolution,
            params: input.params,
          },
          signal: ctx.signal,
          onProgress: (f, phase, m) => ctx.onProgress(0.05 + 0.9 * f, phase, m),
        }),
      );
      return { status: "succeeded", outputUrl: result.outputUrl, metrics: { ...result.metrics, ...baseMetrics() } };
    }

    await mkdir(dir, { recursive: true });
    const files = { video: path.join(dir, "input-video"), audio: path.join(dir, "input-audio"), output: path.join(dir, "output.mp4") };

    ctx.onProgress(0.02, "downloading");
    const limits = { maxBytes: config.limits.maxInputBytes, timeoutMs: config.limits.downloadTimeoutMs, attempts: config.limits.downloadAttempts, allowPrivate: config.allowPrivateNetworkUrls };
    const fetched = await timed("download", () => fetchInputs({ input, driver, files, limits, dispatcher: deps.downloadAgent, signal: ctx.signal, log: jobLog }));
    throwIfAborted(ctx.signal);

    stage = "validation";
    ctx.onProgress(0.08, "validating");
    const media = await timed("validation", () =>
      validateInputs({ video: fetched.videoPath, audio: files.audio }, { ffprobePath: config.mediaTools.ffprobe.path, timeoutMs: config.limits.ffprobeTimeoutMs, limits: config.limits.media, bounds: config.limits.ffmpeg, signal: ctx.signal }),
    );
    throwIfAborted(ctx.signal);

    stage = "inference";
    ctx.onProgress(0.1, "inferring");
    const inferred = await timed("inference", () =>
      driver.infer({
        jobId: input.jobId,
        attemptId: input.attemptId,
        videoPath: fetched.videoPath,
        videoSha256: input.videoSha256,
        audioPath: files.audio,
        outputPath: files.output,
        video: media.video,
        audio: media.audio,
        aspectRatio: input.aspectRatio,
        resolution: input.resolution,
        params: input.params,
        signal: ctx.signal,
        onProgress: (f, phase, m) => ctx.onProgress(0.1 + 0.8 * Math.min(1, Math.max(0, f)), phase, m),
      }),
    );
    throwIfAborted(ctx.signal);

    stage = "postprocessing";
    const output = await checkOutput(files.output, { ffprobePath: config.mediaTools.ffprobe.path, timeoutMs: config.limits.ffprobeTimeoutMs, bounds: config.limits.ffmpeg, signal: ctx.signal });

    stage = "upload";
    ctx.onProgress(0.92, "uploading");
    const key = outputKey(storage.prefix, input.jobId, ".mp4");
    const stored = await timed("upload", () => storage.putFile({ filePath: files.output, key, contentType: "video/mp4", signal: ctx.signal }));
    throwIfAborted(ctx.signal);

    const metrics: JsonObject = {
      GENERATION_TIME_SEC: null,
      SCRIPT_WALL_TIME_SEC: null,
      PEAK_VRAM_MIB: null,
      PEAK_RAM_KB: null,
      engine: driver.name,
      ...inferred.metrics,
      ...baseMetrics(),
      output_bytes: stored.bytes,
      output_duration_sec: output.durationSec,
      output_key: stored.key,
      input: { video_duration_sec: media.video?.durationSec ?? null, audio_duration_sec: media.audio.durationSec },
      avatar_source: fetched.source,
    };
    await writeSidecar(deps, input, stored.key, stored.url, stored.sha1, metrics, ctx.signal, jobLog);
    // A private bucket's link carries its download authorization in the query: keep it out of logs.
    jobLog.info({ outputUrl: redactUrl(stored.url), seconds: metrics.total_time, lipSync: metrics.lip_sync }, "worker_job_success");
    return { status: "succeeded", outputUrl: stored.url, metrics };
  } catch (err) {
    if (err instanceof JobAbortedError) throw err;
    if (ctx.signal.aborted) throw new JobAbortedError(abortReasonOf(ctx.signal));
    const errorInfo = toErrorInfo(err, stage);
    const level = errorInfo.error_type === "media_error" ? "warn" : "error";
    jobLog[level](
      { err, errorType: errorInfo.error_type, stage: errorInfo.stage, retryable: errorInfo.retryable, details: errorInfo.details },
      errorInfo.error_type,
    );
    return { status: "failed", errorInfo, metrics: baseMetrics() };
  } finally {
    await rm(dir, { recursive: true, force: true }).catch((err: unknown) => jobLog.warn({ err, dir }, "work_dir_cleanup_failed"));
  }
}

/** An engine may exit 0 and write garbage: the output must be a video with sound. */
async function checkOutput(file: string, opts: { ffprobePath: string; timeoutMs: number; bounds: FfmpegBounds; signal: AbortSignal }): Promise<MediaInfo> {
  let info: MediaInfo;
  try {
    info = await probeMedia(file, { ...opts, what: "output" });
  } catch (err) {
    if (err instanceof JobAbortedError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw JobError.processing("postprocessing", `engine output is not a playable video: ${message}`, false);
  }
  if (!info.video || !info.audio) {
    throw JobError.processing("postprocessing", "engine output lacks a video or an audio stream", false, { format: info.formatName });
  }
  return info;
}

/** The metadata JSON beside the video, uploaded with it so the bucket alone explains each output. */
async function writeSidecar(
  deps: PipelineDeps,
  input: JobInput,
  key: string,
  url: string,
  sha1: string | null,
  metrics: JsonObject,
  signal: AbortSignal,
  log: Logger,
) {
  const sidecarKey = key.replace(/\.mp4$/, ".json");
  const value = {
    musetalk_job_id: input.jobId,
    buffer_job_id: input.bufferJobId,
    attempt: input.attempt,
    worker_id: deps.workerId,
    gpu_class: deps.gpuClass,
    engine: metrics.engine ?? deps.driver.name,
    lip_sync: metrics.lip_sync,
    aspect_ratio: input.aspectRatio,
    resolution: input.resolution,
    generation_time_sec: metrics.GENERATION_TIME_SEC,
    script_wall_time_sec: metrics.SCRIPT_WALL_TIME_SEC,
    peak_vram_mib: metrics.PEAK_VRAM_MIB,
    peak_ram_kb: metrics.PEAK_RAM_KB,
    b2_bucket: deps.config.storage.kind === "b2" ? deps.config.storage.b2.bucketName : null,
    b2_file_name: key,
    output_url: url,
    output_sha1: sha1,
    stage_times: metrics.stage_times,
    create_time_utc: new Date().toISOString(),
  };
  try {
    await deps.storage.putJson({ key: sidecarKey, value, signal });
    log.info({ key: sidecarKey }, "wrote_metadata_json");
  } catch (err) {
    if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
    // The video is stored; losing its sidecar is not worth a GPU re-run.
    log.warn({ err, key: sidecarKey }, "failed_to_write_metadata_json");
  }
}
