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

/** Free-form JSON objects (metrics, params, metadata) are bounded by the body limit, not here. */
export const JsonObject = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof JsonObject>;

export const IsoDateTime = z.string();

export const WorkerIdParams = z.object({ worker_id: WorkerId });
export const BufferJobIdParams = z.object({ buffer_job_id: BufferJobId });
export const JobIdParams = z.object({ job_id: JobId });
export const PublicJobIdParams = z.object({ id: JobId });
