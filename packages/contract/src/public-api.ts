import { z } from "zod";
import { HttpUrl, IsoDateTime, JobId, JsonObject, VideoSha256 } from "./common.js";
import { ErrorInfo } from "./worker-api.js";

export const JobStatus = z.enum(["queued", "running", "succeeded", "failed", "cancelled"]);
export type JobStatus = z.infer<typeof JobStatus>;

export const TERMINAL_JOB_STATUSES = ["succeeded", "failed", "cancelled"] as const satisfies readonly JobStatus[];

/** "9:16", "16:9", "1:1", ... */
export const AspectRatio = z.string().regex(/^[1-9]\d{0,2}:[1-9]\d{0,2}$/, "aspect_ratio must look like 9:16");
/** "720p" or "512x512". */
export const Resolution = z.string().regex(/^([1-9]\d{2,3}p|[1-9]\d{1,4}x[1-9]\d{1,4})$/, "resolution must look like 720p or 512x512");

export const CreateJobRequest = z.object({
  video_url: HttpUrl,
  audio_url: HttpUrl,
  aspect_ratio: AspectRatio.default("1:1"),
  resolution: Resolution.default("512x512"),
  params: JsonObject.default({}),
  webhook_url: HttpUrl.nullish(),
  metadata: JsonObject.nullish(),
  /** Higher runs first; ties run in submission order. */
  priority: z.number().int().min(-100).max(100).default(0),
  /**
   * sha256 of the bytes at video_url, when the client knows them. A worker whose engine keeps
   * that avatar prepared then skips the download; one that downloads checks the bytes against
   * it, and a mismatch fails the job as a media_error. Absent: every attempt downloads.
   */
  video_sha256: VideoSha256.optional(),
});
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

export const JobInput = z.object({
  video_url: z.string(),
  audio_url: z.string(),
  aspect_ratio: z.string(),
  resolution: z.string(),
  params: JsonObject,
  /** As submitted; null when the job named no hash. */
  video_sha256: z.string().nullable(),
});
export type JobInput = z.infer<typeof JobInput>;

export const JobView = z.object({
  id: JobId,
  status: JobStatus,
  progress: z.number(),
  phase: z.string().nullable(),
  output_url: z.string().nullable(),
  metrics: JsonObject.nullable(),
  /** Human-readable cause; `error_info` carries the structured one. */
  error: z.string().nullable(),
  error_info: ErrorInfo.nullable(),
  input: JobInput,
  metadata: JsonObject.nullable(),
  webhook_url: z.string().nullable(),
  priority: z.number().int(),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  worker_id: z.string().nullable(),
  cancel_requested: z.boolean(),
  created_at: IsoDateTime,
  started_at: IsoDateTime.nullable(),
  finished_at: IsoDateTime.nullable(),
});
export type JobView = z.infer<typeof JobView>;

export const ListJobsQuery = z.object({
  status: JobStatus.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Opaque; pass back `next_cursor` from the previous page. */
  cursor: z.string().max(200).optional(),
});
export type ListJobsQuery = z.infer<typeof ListJobsQuery>;

export const ListJobsResponse = z.object({
  jobs: z.array(JobView),
  next_cursor: z.string().nullable(),
});
export type ListJobsResponse = z.infer<typeof ListJobsResponse>;

/** `detail` is the original's reply to DELETE; the job view is Fleet's addition. */
export const CancelJobResponse = z.object({
  detail: z.string(),
  job: JobView,
});
export type CancelJobResponse = z.infer<typeof CancelJobResponse>;

export const WebhookEvent = z.enum(["job.succeeded", "job.failed", "job.cancelled"]);
export type WebhookEvent = z.infer<typeof WebhookEvent>;

/** Body POSTed to a job's webhook_url when it ends. */
export const WebhookPayload = z.object({
  event: WebhookEvent,
  delivered_at: IsoDateTime,
  job: JobView,
});
export type WebhookPayload = z.infer<typeof WebhookPayload>;

export const HealthResponse = z.object({ status: z.literal("ok") });
export const ReadyResponse = z.object({
  status: z.enum(["ok", "unavailable"]),
  database: z.enum(["ok", "unreachable"]),
});
export type ReadyResponse = z.infer<typeof ReadyResponse>;
