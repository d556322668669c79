import { z } from "zod";
import { BufferJobId, HttpUrl, IsoDateTime, JobId, JsonObject, VideoSha256, WorkerId } from "./common.js";

/** What a worker says it is doing. `offline` is never sent: only the reaper writes it. */
export const WorkerReportedStatus = z.enum(["idle", "busy", "draining", "error"]);
export type WorkerReportedStatus = z.infer<typeof WorkerReportedStatus>;

export const WorkerStatus = z.enum(["idle", "busy", "draining", "error", "offline"]);
export type WorkerStatus = z.infer<typeof WorkerStatus>;

/** Health of the inference engine beside the worker, as the worker last saw it. */
/**
 * The inference engine's prepared-avatar cache, as its /health-check reports it (counts since the
 * engine process started; `hit_rate` null before the first lookup).
 */
export const AvatarCacheStats = z.object({
  bytes: z.number().nonnegative(),
  max_bytes: z.number().nonnegative(),
  entries: z.number().int().nonnegative(),
  hits: z.number().int().nonnegative(),
  misses: z.number().int().nonnegative(),
  hit_rate: z.number().min(0).max(1).nullable(),
  evictions: z.number().int().nonnegative().optional(),
  corrupt_rebuilt: z.number().int().nonnegative().optional(),
});
export type AvatarCacheStats = z.infer<typeof AvatarCacheStats>;

export const EngineHealth = z.object({
  driver: z.string().max(32),
  state: z.enum(["ready", "starting", "busy", "unavailable", "error"]),
  detail: z.string().max(500).nullish(),
  /** True for the CPU development engine: it makes videos without lip movement. */
  lip_sync: z.boolean().optional(),
  /** Engines with an avatar cache only (the `http` driver's MuseTalk server with one configured). */
  avatar_cache: AvatarCacheStats.nullish(),
});
export type EngineHealth = z.infer<typeof EngineHealth>;

export const SystemFacts = z
  .object({
    gpu_name: z.string().max(200).nullish(),
    gpu_memory_mib: z.number().nonnegative().nullish(),
    disk_free_gb: z.number().nonnegative().nullish(),
    hostname: z.string().max(255).nullish(),
  })
  .catchall(z.unknown());
export type SystemFacts = z.infer<typeof SystemFacts>;

/**
 * Body of POST /internal/buffer/workers/{worker_id}/heartbeat.
 * The original workers send `{status, gpu_class, capacity, error}` (the Vast supervisor only
 * `{status, gpu_class}`), so everything beyond `status` is optional.
 */
export const HeartbeatRequest = z.object({
  status: WorkerReportedStatus,
  gpu_class: z.string().max(200).nullish(),
  capacity: z.number().int().min(1).max(64).default(1),
  error: z.string().max(10_000).nullish(),
  /** buffer_job_ids this worker holds; when absent, every running attempt of the worker is renewed. */
  active_jobs: z.array(BufferJobId).max(64).optional(),
  version: z.string().max(100).nullish(),
  engine: EngineHealth.nullish(),
  system: SystemFacts.nullish(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

/** `detail` stays exactly "ok": the original workers and the operators' curl checks read it. */
export const HeartbeatResponse = z.object({
  detail: z.literal("ok"),
  heartbeat_interval_sec: z.number(),
  lease_ttl_sec: z.number(),
  /** Attempts to abort now: their jobs were cancelled by a client. */
  cancel: z.array(BufferJobId),
  /** Attempts the worker listed in active_jobs that it no longer holds: stop and drop them. */
  lost: z.array(BufferJobId),
  /** The operator asked this worker to drain: finish what runs, claim nothing new. */
  drain: z.boolean(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

export const ClaimJobRequest = z.object({
  worker_id: WorkerId,
  /** Long-poll: hold the request up to this long until a job is claimable. */
  wait_ms: z.number().int().min(0).max(30_000).default(0),
});
export type ClaimJobRequest = z.infer<typeof ClaimJobRequest>;

export const ClaimedJob = z.object({
  buffer_job_id: BufferJobId,
  musetalk_job_id: JobId,
  video_url: HttpUrl,
  audio_url: HttpUrl,
  aspect_ratio: z.string(),
  resolution: z.string(),
  params: JsonObject,
  attempt: z.number().int().min(1),
  lease_expires_at: IsoDateTime,
  /**
   * sha256 of the video's bytes, present only when the job was created with one: the worker may
   * ask its engine whether it keeps that avatar prepared before downloading it.
   */
  video_sha256: VideoSha256.optional(),
});
export type ClaimedJob = z.infer<typeof ClaimedJob>;

/** Why a claim returned no job; machine-readable so a worker can log and act on it. */
export const ClaimRefusal = z.enum([
  "no_job",
  "unknown_worker",
  "worker_offline",
  "worker_draining",
  "worker_quarantined",
  "at_capacity",
]);
export type ClaimRefusal = z.infer<typeof ClaimRefusal>;

export const ClaimJobResponse = z.object({
  job: ClaimedJob.nullable(),
  reason: ClaimRefusal.optional(),
});
export type ClaimJobResponse = z.infer<typeof ClaimJobResponse>;

/**
 * `download_error`: an input URL could not be fetched (4xx, 5xx after retries, timeout, refused
 * address). `media_error` and `download_error` are the input's fault (the job's, never the
 * worker's: they never count toward quarantine); the rest are the worker's unless their stage
 * says otherwise.
 */
export const ErrorType = z.enum(["media_error", "download_error", "processing_error", "unknown_error"]);
export type ErrorType = z.infer<typeof ErrorType>;

export const ErrorStage = z.enum([
  "download",
  "validation",
  "preprocessing",
  "inference",
  "postprocessing",
  "upload",
  "report",
  "unknown",
]);
export type ErrorStage = z.infer<typeof ErrorStage>;

/**
 * Whose fault a failure is: `job` when its inputs caused it (unreachable URL, hostile or
 * oversized media), `worker` when the box did (engine crash, storage, out of memory). Only
 * worker faults should count towards quarantining a worker.
 */
export const ErrorFault = z.enum(["job", "worker"]);
export type ErrorFault = z.infer<typeof ErrorFault>;

/** A failure the retry policy can act on, instead of a repr() string. */
export const ErrorInfo = z.object({
  error_type: ErrorType,
  stage: ErrorStage,
  message: z.string().max(10_000),
  retryable: z.boolean(),
  details: JsonObject.nullish(),
  /** Absent from older workers and the original ones: classify by error_type and stage then. */
  fault: ErrorFault.optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

export const TerminalReportStatus = z.enum(["succeeded", "failed", "cancelled", "released"]);
export type TerminalReportStatus = z.infer<typeof TerminalReportStatus>;

/**
 * Body of POST /internal/buffer/jobs/{buffer_job_id}/status. The original sends
 * `{status, error, output_url, metrics}`; the unified worker said "success" for "succeeded".
 */
export const JobStatusReport = z.object({
  status: z.preprocess((v) => (v === "success" ? "succeeded" : v), TerminalReportStatus),
  error: z.string().max(10_000).nullish(),
  output_url: HttpUrl.nullish(),
  metrics: JsonObject.nullish(),
  error_info: ErrorInfo.nullish(),
});
export type JobStatusReport = z.infer<typeof JobStatusReport>;

export const JobStatusReportResponse = z.object({
  detail: z.literal("ok"),
  /** What the job became: the retry policy may have requeued it. */
  job_status: z.string(),
});
export type JobStatusReportResponse = z.infer<typeof JobStatusReportResponse>;

/**
 * Body of POST /internal/jobs/{job_id}/progress. The original `/generate` sends `status: running`
 * plus `config_label` and `batch_size` (ignored). The original main-tier worker has no /status
 * route: it sends its final outcome here, `status: succeeded` with `output_url` and `metrics`, or
 * `failed` with `error`; that report is fenced to the worker holding the attempt, like /status.
 */
export const ProgressReport = z.object({
  progress: z.number().min(0).max(1),
  phase: z.string().max(64).nullish(),
  metrics: JsonObject.nullish(),
  worker_id: WorkerId,
  buffer_job_id: BufferJobId.nullish(),
  status: z.preprocess((v) => (v === "success" ? "succeeded" : v), z.enum(["running", "succeeded", "failed"])).nullish(),
  error: z.string().max(10_000).nullish(),
  output_url: HttpUrl.nullish(),
});
export type ProgressReport = z.infer<typeof ProgressReport>;

export const ProgressReportResponse = z.object({
  detail: z.literal("ok"),
  progress: z.number(),
  /** Only on a final report (`status` succeeded or failed): what the job became. */
  job_status: z.string().optional(),
});
export type ProgressReportResponse = z.infer<typeof ProgressReportResponse>;

export const RunningAttempt = z.object({
  buffer_job_id: BufferJobId,
  job_id: JobId,
  claimed_at: IsoDateTime,
  lease_expires_at: IsoDateTime,
});

/**
 * Which pool a worker belongs to. `main`, `transient` and `expensive` are the preferred tiers (the
 * original main-tier workers, by their `worker_type`); `buffer` takes a job when no preferred
 * worker is online or once the job has waited BUFFER_SPILL_AFTER_SEC.
 */
export const WorkerTier = z.enum(["buffer", "main", "transient", "expensive"]);
export type WorkerTier = z.infer<typeof WorkerTier>;

/** `original`: the Python workers' protocol (heartbeats with neither active_jobs nor version). */
export const WorkerProtocol = z.enum(["fleet", "original"]);
export type WorkerProtocol = z.infer<typeof WorkerProtocol>;

export const WorkerView = z.object({
  worker_id: WorkerId,
  status: WorkerStatus,
  tier: WorkerTier,
  protocol: WorkerProtocol,
  online: z.boolean(),
  heartbeat_age_sec: z.number().nullable(),
  last_heartbeat: IsoDateTime.nullable(),
  first_seen: IsoDateTime,
  gpu_class: z.string().nullable(),
  capacity: z.number().int(),
  error: z.string().nullable(),
  version: z.string().nullable(),
  system: JsonObject.nullable(),
  engine: JsonObject.nullable(),
  drain_requested: z.boolean(),
  consecutive_failures: z.number().int(),
  quarantined_until: IsoDateTime.nullable(),
  running: z.array(RunningAttempt),
});
export type WorkerView = z.infer<typeof WorkerView>;

export const ListWorkersResponse = z.object({ workers: z.array(WorkerView) });
export type ListWorkersResponse = z.infer<typeof ListWorkersResponse>;

export const DrainWorkerResponse = z.object({ worker: WorkerView });
export type DrainWorkerResponse = z.infer<typeof DrainWorkerResponse>;

/*
 * Reply schemas: how a worker READS the orchestrator's answers. The response schemas above say
 * what a Fleet orchestrator sends; these accept that and also the original orchestrator's
 * shorter replies (`{"detail":"ok"}` to a heartbeat, a claimed job without `params`, `attempt`
 * or `lease_expires_at`), so a Fleet worker can join either one (a worker-first migration).
 * Fields Fleet added are optional with defaults that mean "nothing to do"; unknown fields are
 * dropped. Ids, URLs and statuses stay as strict as in the responses: they decide what runs
 * and where its result goes.
 */

/** Which orchestrator answered: Fleet always sends its timing fields, the original never does. */
export const OrchestratorProtocol = z.enum(["fleet", "original"]);
export type OrchestratorProtocol = z.infer<typeof OrchestratorProtocol>;

export const HeartbeatReply = z
  .object({
    detail: z.string().optional(),
    heartbeat_interval_sec: z.number().positive().optional(),
    lease_ttl_sec: z.number().positive().optional(),
    cancel: z.array(BufferJobId).default([]),
    lost: z.array(BufferJobId).default([]),
    drain: z.boolean().default(false),
  })
  .transform((r) => {
    const protocol: OrchestratorProtocol = r.heartbeat_interval_sec !== undefined || r.lease_ttl_sec !== undefined ? "fleet" : "original";
    return { ...r, protocol };
  });
export type HeartbeatReply = z.infer<typeof HeartbeatReply>;

/** ClaimedJob as the worker reads it: the fields Fleet added are optional; ids and URLs stay strict. */
export const ClaimedJobReply = ClaimedJob.extend({
  params: JsonObject.default({}),
  /** Null when the orchestrator does not count attempts (the original). */
  attempt: ClaimedJob.shape.attempt.nullable().default(null),
  lease_expires_at: IsoDateTime.nullable().default(null),
});
export type ClaimedJobReply = z.infer<typeof ClaimedJobReply>;

/**
 * A claimed job this worker cannot run (a URL that is not http, a missing field): its valid
 * `buffer_job_id` still lets the worker report it failed instead of leaving it running forever
 * on an orchestrator with no lease (the original). The raw fields are kept for the message.
 */
export const UnrunnableJobReply = z
  .looseObject({ buffer_job_id: BufferJobId, musetalk_job_id: z.string().max(200).optional() })
  .transform((j) => ({ ...j, unrunnable: true as const }));
export type UnrunnableJobReply = z.infer<typeof UnrunnableJobReply>;

export const ClaimJobReply = z.object({
  job: z.union([ClaimedJobReply, UnrunnableJobReply]).nullable(),
  /** A Fleet refusal reason, or whatever a newer orchestrator says; absent from the original. */
  reason: z.string().max(64).optional(),
});
export type ClaimJobReply = z.infer<typeof ClaimJobReply>;

/**
 * The original answers a status or progress report with a body nobody read (its workers logged
 * only the HTTP status), so any 2xx body is accepted and only `job_status` is kept when present.
 */
export const JobStatusReportReply = z.preprocess(
  (v) => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {}),
  z.object({ job_status: z.string().max(64).nullable().catch(null).default(null) }),
);
export type JobStatusReportReply = z.infer<typeof JobStatusReportReply>;

export const ProgressReportReply = z.preprocess(
  (v) => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {}),
  z.object({ progress: z.number().nullable().catch(null).default(null) }),
);
export type ProgressReportReply = z.infer<typeof ProgressReportReply>;

/**
 * Body of POST /internal/main/workers/{worker_id}/heartbeat, as the original main-tier worker
 * (`unified_worker.py`) sends it every 10 s from its own thread, during jobs too.
 */
export const MainHeartbeatRequest = z.object({
  status: WorkerReportedStatus,
  /** The job (musetalk_job_id) it runs; its lease is renewed by this heartbeat. */
  current_job_id: JobId.nullish(),
  provider: z.string().max(64).nullish(),
  gpu_class: z.string().max(200).nullish(),
  /** main | transient | expensive; anything else (the original's test runs sent "test-batch") is main. */
  worker_type: z.string().max(64).nullish(),
  system_info: JsonObject.nullish(),
});
export type MainHeartbeatRequest = z.infer<typeof MainHeartbeatRequest>;

export const MainHeartbeatResponse = z.object({ detail: z.literal("ok") });
export type MainHeartbeatResponse = z.infer<typeof MainHeartbeatResponse>;

export const MainClaimJobRequest = z.object({
  worker_id: WorkerId,
  worker_type: z.string().max(64).nullish(),
  gpu_class: z.string().max(200).nullish(),
});
export type MainClaimJobRequest = z.infer<typeof MainClaimJobRequest>;

/** The claimed job without `buffer_job_id`: the main tier reports by job id, on /progress. */
export const MainClaimedJob = ClaimedJob.omit({ buffer_job_id: true });
export type MainClaimedJob = z.infer<typeof MainClaimedJob>;

export const MainClaimJobResponse = z.object({
  job: MainClaimedJob.nullable(),
  reason: ClaimRefusal.optional(),
});
export type MainClaimJobResponse = z.infer<typeof MainClaimJobResponse>;
