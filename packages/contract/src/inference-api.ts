import { z } from "zod";
import { HttpUrl, JobId, JsonObject, VideoSha256 } from "./common.js";
import { AvatarCacheStats, ErrorFault, ErrorInfo, ErrorStage, ErrorType } from "./worker-api.js";

/**
 * Fleet's inference contract (driver `http`): the CUDA container keeps its models warm and
 * runs predictions on files in a volume it shares with the worker. Shaped after Cog's
 * prediction API: idempotent PUT by id, GET for progress, POST .../cancel.
 */
export const INFERENCE_PATHS = {
  health: "/health-check",
  prediction: "/predictions/:id",
  cancel: "/predictions/:id/cancel",
  avatar: "/avatars/:hash",
} as const;

/**
 * GET /avatars/{sha256}: does the engine keep the avatar whose video has this sha256 prepared,
 * with its current settings? `have_it`: PUT the prediction with `video_sha256` and no
 * `video_path`, and download nothing. `send_it`: download the video and PUT it as usual (an
 * engine without an avatar cache always says this; so does any answer that is not a 200 with
 * this body, e.g. the 404 of an engine that predates the route). Asking marks the entry as
 * recently used, so the eviction of that entry before the PUT arrives is unlikely; when it
 * happens anyway the prediction fails as a retryable processing_error with
 * `details.cause: "avatar_not_prepared"`, and the next attempt is told `send_it`.
 */
export const AvatarAnswer = z.object({
  video_sha256: VideoSha256,
  answer: z.enum(["have_it", "send_it"]),
});
export type AvatarAnswer = z.infer<typeof AvatarAnswer>;

export const InferenceHealth = z.object({
  status: z.enum(["READY", "STARTING", "BUSY", "SETUP_FAILED"]),
  /** Model/engine identity, e.g. "musetalk-v15". */
  engine: z.string().optional(),
  version: z.string().optional(),
  /** False for engines that make video without lip movement (the CPU development engine). */
  lip_sync: z.boolean().optional(),
  detail: z.string().nullish(),
  gpu: JsonObject.nullish(),
  /** Null without a cache; a shape this worker does not know is dropped, never a failed health check. */
  avatar_cache: AvatarCacheStats.nullish().catch(null),
});
export type InferenceHealth = z.infer<typeof InferenceHealth>;

export const PredictionInput = z.object({
  /**
   * Paths inside the shared work volume, as the inference container sees them. `video_path`
   * is left out only after GET /avatars/{sha256} answered `have_it` for `video_sha256`.
   */
  video_path: z.string().min(1).optional(),
  /** The video's sha256: with video_path the engine checks the file against it (a mismatch is a media_error). */
  video_sha256: VideoSha256.optional(),
  audio_path: z.string().min(1),
  output_path: z.string().min(1),
  aspect_ratio: z.string(),
  resolution: z.string(),
  params: JsonObject.default({}),
  batch_size: z.number().int().min(1).max(64).optional(),
}).refine((i) => i.video_path !== undefined || i.video_sha256 !== undefined, {
  message: "video_path, or video_sha256 of an avatar the engine keeps prepared",
  path: ["video_path"],
});
export type PredictionInput = z.infer<typeof PredictionInput>;

export const PredictionRequest = z.object({ input: PredictionInput });
export type PredictionRequest = z.infer<typeof PredictionRequest>;

export const PredictionStatus = z.enum(["starting", "processing", "succeeded", "failed", "canceled"]);
export type PredictionStatus = z.infer<typeof PredictionStatus>;

export const Prediction = z.object({
  id: z.string(),
  status: PredictionStatus,
  progress: z.number().min(0).max(1).default(0),
  phase: z.string().nullish(),
  output: z.object({ video_path: z.string() }).nullish(),
  error: ErrorInfo.nullish(),
  metrics: JsonObject.nullish(),
});
export type Prediction = z.infer<typeof Prediction>;

/** The original worker's POST /generate, kept unchanged (driver `generate` and the worker's own port). */
export const GenerateRequest = z.object({
  /** A UUID, as the original's callers send: it names the output key, so nothing else may pass. */
  musetalk_job_id: JobId,
  video_url: HttpUrl,
  audio_url: HttpUrl,
  aspect_ratio: z.string(),
  resolution: z.string(),
  params: JsonObject.default({}),
});
export type GenerateRequest = z.infer<typeof GenerateRequest>;

export const GenerateSuccess = z.object({
  status: z.literal("success"),
  output_url: z.string(),
  musetalk_job_id: JobId,
  metrics: JsonObject,
  error: z.null(),
});
export type GenerateSuccess = z.infer<typeof GenerateSuccess>;

/** 422 (the job's fault: media_error, download_error) and 500 (the worker's) bodies of /generate. */
export const GenerateFailure = z.object({
  status: z.literal("failed"),
  error_type: ErrorType,
  error_message: z.string(),
  stage: ErrorStage,
  details: JsonObject.nullish(),
  retryable: z.boolean(),
  stage_times: JsonObject.nullish(),
  stack_trace: z.string().nullish(),
  fault: ErrorFault.optional(),
});
export type GenerateFailure = z.infer<typeof GenerateFailure>;

export const LegacyHealth = z.object({ status: z.literal("ok") });
