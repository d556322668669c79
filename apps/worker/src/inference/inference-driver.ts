import type { EngineHealth, JsonObject } from "@fleet/contract";
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
  videoPath: string;
  audioPath: string;
  outputPath: string;
  video: MediaInfo;
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
