import { z } from "zod";

/** Worker ids appear in URLs and SQL dashboards; keep them printable and bounded. */
export const WorkerId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@-]+$/, "worker_id may contain letters, digits and . _ : @ - only");
export type WorkerId = z.infer<typeof WorkerId>;

export const JobId = z.uuid();
export type JobId = z.infer<typeof JobId>;

/** The fencing token: one per attempt, so a requeued job never accepts the old holder's reports. */
export const BufferJobId = z.uuid();
export type BufferJobId = z.infer<typeof BufferJobId>;

/** Absolute http(s) URL. Whether private hosts are allowed is decided by the server, not the schema. */
export const HttpUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048);
export type HttpUrl = z.infer<typeof HttpUrl>;

/**
 * sha256 of an avatar video's bytes, 64 lowercase hex digits: the name under which the
 * orchestrator, the worker and the inference engine know one avatar (an engine that keeps it
 * prepared lets the worker skip its download).
 */
export const VideoSha256 = z.string().regex(/^[0-9a-f]{64}$/, "video_sha256 must be 64 lowercase hex digits (sha256 of the video's bytes)");
export type VideoSha256 = z.infer<typeof VideoSha256>;

/** Free-form JSON objects (metrics, params, metadata) are bounded by the body limit, not here. */
export const JsonObject = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof JsonObject>;

export const IsoDateTime = z.string();

export const WorkerIdParams = z.object({ worker_id: WorkerId });
export const BufferJobIdParams = z.object({ buffer_job_id: BufferJobId });
export const JobIdParams = z.object({ job_id: JobId });
export const PublicJobIdParams = z.object({ id: JobId });
