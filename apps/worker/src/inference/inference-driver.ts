import type { AvatarAnswer, EngineHealth, JsonObject } from "@fleet/contract";
import type { MediaInfo } from "../media/validate.js";

export interface HealthProbeOptions {
  signal: AbortSignal;
  /** Jobs are running: an engine that is slow to answer is busy, not gone. */
  busy: boolean;
}

export type ProgressCallback = (fraction: number, phase: string, metrics?: JsonObject) => void;

/** A job whose inputs the worker downloaded and validated, and whose output it will upload. */
export interface FileInferenceTask {
  jobId: string;
  /** Unique per attempt: the prediction id for engines that are idempotent by id. */
  attemptId: string;
  /** Null (and `video` too) when the engine answered `have_it` for `videoSha256`: nothing was downloaded. */
  videoPath: string | null;
  /** Set when the job named it; the downloaded file, if any, has been checked against it. */
  videoSha256: string | null;
  audioPath: string;
  outputPath: string;
  video: MediaInfo | null;
  audio: MediaInfo;
  aspectRatio: string;
  resolution: string;
  params: JsonObject;
  signal: AbortSignal;
  /** 0..1 of the inference stage only; the pipeline maps it into the job's overall progress. */
  onProgress: ProgressCallback;
}

export interface FileInferenceDriver {
  readonly name: "ffmpeg" | "http";
  readonly input: "files";
  health(opts: HealthProbeOptions): Promise<EngineHealth>;
  /**
   * Asked before downloading the video of a job that names its hash: `have_it` when the engine
   * keeps that avatar prepared, so the task may leave the video out. Never throws; an engine
   * without an avatar cache, or one that cannot be asked, answers `send_it`.
   */
  avatar(videoSha256: string, signal: AbortSignal): Promise<AvatarAnswer["answer"]>;
  infer(task: FileInferenceTask): Promise<{ metrics: JsonObject }>;
  /** Releases connections; called once, after the last job. */
  close(): Promise<void>;
}

/** The original image's /generate: it downloads, infers and uploads by itself. */
export interface UrlInferenceTask {
  job: { musetalk_job_id: string; video_url: string; audio_url: string; aspect_ratio: string; resolution: string; params: JsonObject };
  signal: AbortSignal;
  onProgress: ProgressCallback;
}

export interface UrlInferenceDriver {
  readonly name: "generate";
  readonly input: "urls";
  health(opts: HealthProbeOptions): Promise<EngineHealth>;
  generate(task: UrlInferenceTask): Promise<{ outputUrl: string; metrics: JsonObject }>;
  /** Releases connections; called once, after the last job. */
  close(): Promise<void>;
}

/** Chosen by INFERENCE_DRIVER; the pipeline branches on `input`. */
export type InferenceDriver = FileInferenceDriver | UrlInferenceDriver;
