import type { z } from "zod";
import {
  ApiKeyRefParams,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  EnrollWorkerResponse,
  ListApiKeysResponse,
  RevokeApiKeyResponse,
  RevokeWorkerTokensRequest,
  RevokeWorkerTokensResponse,
} from "./admin-api.js";
import {
  BufferJobIdParams,
  JobIdParams,
  PublicJobIdParams,
  WorkerIdParams,
} from "./common.js";
import { ErrorBody } from "./errors.js";
import {
  CancelJobResponse,
  CreateJobRequest,
  HealthResponse,
  JobView,
  ListJobsQuery,
  ListJobsResponse,
  ReadyResponse,
} from "./public-api.js";
import {
  ClaimJobRequest,
  ClaimJobResponse,
  DrainWorkerResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  JobStatusReport,
  JobStatusReportResponse,
  ListWorkersResponse,
  MainClaimJobRequest,
  MainClaimJobResponse,
  MainHeartbeatRequest,
  MainHeartbeatResponse,
  ProgressReport,
  ProgressReportResponse,
} from "./worker-api.js";

/** `internal`: X-Internal-API-Key. `public`: X-API-Key, or X-Internal-API-Key for clients of the original. */
export type RouteAuth = "internal" | "public" | "none";

export interface RouteDef {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Fastify-style path: `:name` segments are params. */
  path: string;
  auth: RouteAuth;
  /**
   * `internal` routes a worker may also call with its own token (`Authorization: Bearer fw_...`),
   * acting only as itself. Every other internal route takes the shared key alone.
   */
  workerToken?: boolean;
  summary: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  responses: Record<number, z.ZodType>;
}

const errors = { 400: ErrorBody, 401: ErrorBody } as const;
/** A worker token acting as another worker gets 403 `worker_identity_mismatch`. */
const workerErrors = { ...errors, 403: ErrorBody } as const;

/**
 * Every route of the orchestrator, as data. The server registers exactly these; clients and tests
 * walk the table (a new route cannot forget auth: the auth test iterates this object).
 */
export const routes = {
  heartbeat: {
    method: "POST",
    path: "/internal/buffer/workers/:worker_id/heartbeat",
    auth: "internal",
    workerToken: true,
    summary: "Record a worker heartbeat: upsert buffer_workers, renew the leases it holds.",
    params: WorkerIdParams,
    body: HeartbeatRequest,
    responses: { 200: HeartbeatResponse, ...workerErrors },
  },
  claimJob: {
    method: "POST",
    path: "/internal/buffer/jobs/claim",
    auth: "internal",
    workerToken: true,
    summary: "Claim the next runnable job (long-polls up to wait_ms).",
    body: ClaimJobRequest,
    responses: { 200: ClaimJobResponse, ...workerErrors },
  },
  reportJobStatus: {
    method: "POST",
    path: "/internal/buffer/jobs/:buffer_job_id/status",
    auth: "internal",
    workerToken: true,
    summary: "Report an attempt's terminal outcome; fenced by buffer_job_id, idempotent.",
    params: BufferJobIdParams,
    body: JobStatusReport,
    responses: { 200: JobStatusReportResponse, ...workerErrors, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody },
  },
  reportProgress: {
    method: "POST",
    path: "/internal/jobs/:job_id/progress",
    auth: "internal",
    workerToken: true,
    summary: "Report progress of a running job (never goes backwards), or a main-tier worker's final outcome (fenced, idempotent).",
    params: JobIdParams,
    body: ProgressReport,
    responses: { 200: ProgressReportResponse, ...workerErrors, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody },
  },
  mainHeartbeat: {
    method: "POST",
    path: "/internal/main/workers/:worker_id/heartbeat",
    auth: "internal",
    summary: "Heartbeat of an original main-tier worker: upsert it with its tier, renew current_job_id's lease.",
    params: WorkerIdParams,
    body: MainHeartbeatRequest,
    responses: { 200: MainHeartbeatResponse, ...errors },
  },
  mainClaimJob: {
    method: "POST",
    path: "/internal/main/jobs/claim",
    auth: "internal",
    summary: "Claim for an original main-tier worker: the job without buffer_job_id, or {job: null}.",
    body: MainClaimJobRequest,
    responses: { 200: MainClaimJobResponse, ...errors },
  },
  listWorkers: {
    method: "GET",
    path: "/internal/buffer/workers",
    auth: "internal",
    summary: "Workers with liveness (online, heartbeat_age_sec) and the attempts they run.",
    responses: { 200: ListWorkersResponse, 401: ErrorBody },
  },
  drainWorker: {
    method: "POST",
    path: "/internal/buffer/workers/:worker_id/drain",
    auth: "internal",
    summary: "Ask a worker to finish what it runs and claim nothing new.",
    params: WorkerIdParams,
    responses: { 200: DrainWorkerResponse, ...errors, 404: ErrorBody },
  },
  undrainWorker: {
    method: "POST",
    path: "/internal/buffer/workers/:worker_id/undrain",
    auth: "internal",
    summary: "Let a drained worker claim again.",
    params: WorkerIdParams,
    responses: { 200: DrainWorkerResponse, ...errors, 404: ErrorBody },
  },
  createApiKey: {
    method: "POST",
    path: "/internal/admin/keys",
    auth: "internal",
    summary: "Create a client with one API key and a webhook secret; both are shown only in this response.",
    body: CreateApiKeyRequest,
    responses: { 201: CreateApiKeyResponse, ...errors },
  },
  listApiKeys: {
    method: "GET",
    path: "/internal/admin/keys",
    auth: "internal",
    summary: "Every API key (prefix, client, created, revoked, last used); never the key itself.",
    responses: { 200: ListApiKeysResponse, 401: ErrorBody },
  },
  revokeApiKey: {
    method: "POST",
    path: "/internal/admin/keys/:key/revoke",
    auth: "internal",
    summary: "Revoke an API key by prefix or id; requests with it are refused within AUTH_CACHE_SEC.",
    params: ApiKeyRefParams,
    responses: { 200: RevokeApiKeyResponse, ...errors, 404: ErrorBody },
  },
  enrollWorker: {
    method: "POST",
    path: "/internal/admin/workers/:worker_id/tokens",
    auth: "internal",
    summary: "Issue a token that lets one worker act as itself only; shown only in this response.",
    params: WorkerIdParams,
    responses: { 201: EnrollWorkerResponse, ...errors },
  },
  revokeWorkerTokens: {
    method: "POST",
    path: "/internal/admin/workers/:worker_id/tokens/revoke",
    auth: "internal",
    summary: "Revoke a worker's tokens (all of them, or the one with `prefix`).",
    params: WorkerIdParams,
    body: RevokeWorkerTokensRequest,
    responses: { 200: RevokeWorkerTokensResponse, ...errors, 404: ErrorBody },
  },
  createJob: {
    method: "POST",
    path: "/v1/avatar/jobs",
    auth: "public",
    summary: "Submit a lip-sync job. Send Idempotency-Key to make retries safe.",
    body: CreateJobRequest,
    responses: { 201: JobView, 200: JobView, ...errors, 409: ErrorBody, 422: ErrorBody },
  },
  getJob: {
    method: "GET",
    path: "/v1/avatar/jobs/:id",
    auth: "public",
    summary: "One job.",
    params: PublicJobIdParams,
    responses: { 200: JobView, ...errors, 404: ErrorBody },
  },
  listJobs: {
    method: "GET",
    path: "/v1/avatar/jobs",
    auth: "public",
    summary: "Jobs, newest first, paged by cursor.",
    query: ListJobsQuery,
    responses: { 200: ListJobsResponse, ...errors },
  },
  cancelJob: {
    method: "DELETE",
    path: "/v1/avatar/jobs/:id",
    auth: "public",
    summary: "Cancel a queued job at once, or a running one through its worker.",
    params: PublicJobIdParams,
    responses: { 200: CancelJobResponse, ...errors, 404: ErrorBody, 409: ErrorBody },
  },
  health: {
    method: "GET",
    path: "/health",
    auth: "none",
    summary: "Process is up (the original's path).",
    responses: { 200: HealthResponse },
  },
  healthz: {
    method: "GET",
    path: "/healthz",
    auth: "none",
    summary: "Process is up.",
    responses: { 200: HealthResponse },
  },
  readyz: {
    method: "GET",
    path: "/readyz",
    auth: "none",
    summary: "Database reachable: 200, else 503.",
    responses: { 200: ReadyResponse, 503: ReadyResponse },
  },
} as const satisfies Record<string, RouteDef>;

export type RouteName = keyof typeof routes;

/** Fills `:name` segments, URL-encoding each value. */
export function pathFor(path: string, params: Record<string, string> = {}): string {
  return path.replace(/:([a-z_]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${path}`);
    return encodeURIComponent(value);
  });
}
