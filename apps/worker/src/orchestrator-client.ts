import { Pool } from "undici";
import type { z } from "zod";
import {
  createRouteClient,
  routes,
  ClaimJobReply,
  HeartbeatReply,
  JobStatusReportReply,
  ProgressReportReply,
  type ClaimJobRequest,
  type HeartbeatRequest,
  type JobStatusReport,
  type ProgressReport,
} from "@fleet/contract";
import { excerpt } from "./util/excerpt.js";
import { describeNetworkError } from "./util/network-error.js";

/**
 * A call's outcome as data, so each loop decides between retry, drop and stop without
 * try/catch sprawl. `statusCode` is null when no response arrived (network error, timeout).
 */
export type ClientResult<T> =
  | { ok: true; statusCode: number; value: T }
  | {
      ok: false;
      statusCode: number | null;
      /** The contract's error code when the body was an ErrorBody (`lease_lost`, `unauthorized`...). */
      code: string | null;
      message: string;
      /** The failure as an Error (the network error as its cause), for log lines' `{ err }`. */
      error: OrchestratorCallError;
      bodyExcerpt: string;
      /** The caller's own signal ended the call (shutdown, drain). */
      aborted: boolean;
    };

/** A call that failed without throwing: what the orchestrator (or the network) answered. */
export class OrchestratorCallError extends Error {
  override readonly name = "OrchestratorCallError";
  constructor(
    message: string,
    readonly statusCode: number | null,
    readonly code: string | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * 401 or 403: the orchestrator refused our credential. A wrong key never fixes itself, so every
 * loop logs it as a configuration error (louder than a transient failure) on each attempt.
 */
export function credentialRejected(result: { statusCode: number | null }): boolean {
  return result.statusCode === 401 || result.statusCode === 403;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the default per-request timeout (the claim long-poll needs wait_ms on top). */
  timeoutMs?: number;
}

export interface OrchestratorClient {
  heartbeat(workerId: string, body: z.input<typeof HeartbeatRequest>, opts?: CallOptions): Promise<ClientResult<HeartbeatReply>>;
  claimJob(body: z.input<typeof ClaimJobRequest>, opts?: CallOptions): Promise<ClientResult<ClaimJobReply>>;
  reportJobStatus(
    bufferJobId: string,
    body: z.input<typeof JobStatusReport>,
    opts?: CallOptions,
  ): Promise<ClientResult<JobStatusReportReply>>;
  reportProgress(jobId: string, body: z.input<typeof ProgressReport>, opts?: CallOptions): Promise<ClientResult<ProgressReportReply>>;
  close(): Promise<void>;
}

type WorkerRoute = "heartbeat" | "claimJob" | "reportJobStatus" | "reportProgress";

/**
 * Replies are read with the contract's lenient `*Reply` schemas, not the `responses` a Fleet
 * orchestrator promises: the same worker must also work against the original orchestrator,
 * whose heartbeat answers only `{"detail":"ok"}` (a worker-first migration).
 */
const replySchemas: Record<WorkerRoute, z.ZodType> = {
  heartbeat: HeartbeatReply,
  claimJob: ClaimJobReply,
  reportJobStatus: JobStatusReportReply,
  reportProgress: ProgressReportReply,
};

/**
 * The worker side of the worker API (docs/wire-protocol.md), one method per route of the contract's
 * table, sent through the contract's route client. One undici Pool per orchestrator origin:
 * keep-alive is bounded and a socket that errors is dropped, so a restarted orchestrator is
 * reached again on the next call.
 */
export function createOrchestratorClient(opts: { baseUrl: string; apiKey: string | null; workerToken?: string | null; timeoutMs: number }): OrchestratorClient {
  const base = new URL(opts.baseUrl);
  const pool = new Pool(base.origin, {
    connectTimeout: Math.min(opts.timeoutMs, 10_000),
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 30_000,
    // Heartbeats must never queue behind a long-polling claim on the same socket.
    pipelining: 1,
  });
  // A per-worker token is sent instead of the shared key on the routes that take one; without
  // either the shared-key header goes out empty and the orchestrator's 401 says so.
  const client = createRouteClient({
    baseUrl: opts.baseUrl,
    credentials: { internalApiKey: opts.apiKey ?? "", workerToken: opts.workerToken ?? null },
    dispatcher: pool,
    timeoutMs: opts.timeoutMs,
  });

  async function call<T>(route: WorkerRoute, params: Record<string, string>, body: unknown, callOpts: CallOptions = {}): Promise<ClientResult<T>> {
    const def = routes[route];
    const timeoutMs = callOpts.timeoutMs ?? opts.timeoutMs;
    const outcome = await client.call(route, { params, body }, { timeoutMs, signal: callOpts.signal, reply: replySchemas[route] });
    if (outcome.ok) return { ok: true, statusCode: outcome.status, value: outcome.value as T };
    if (outcome.kind === "network") {
      const message = outcome.timedOut ? `timed out after ${timeoutMs} ms` : describeNetworkError(outcome.cause);
      const error = new OrchestratorCallError(message, null, null, { cause: outcome.cause });
      return { ok: false, statusCode: null, code: null, message, error, bodyExcerpt: "", aborted: outcome.aborted };
    }
    const code = outcome.error?.code ?? null;
    const message =
      outcome.kind === "unexpected" ? `unexpected response body for ${def.method} ${def.path}` : (outcome.error?.message ?? `HTTP ${outcome.status}`);
    const error = new OrchestratorCallError(message, outcome.status, code);
    return { ok: false, statusCode: outcome.status, code, message, error, bodyExcerpt: excerpt(outcome.text), aborted: false };
  }

  return {
    heartbeat: (workerId, body, o) => call("heartbeat", { worker_id: workerId }, body, o),
    claimJob: (body, o) => call("claimJob", {}, body, o),
    reportJobStatus: (bufferJobId, body, o) => call("reportJobStatus", { buffer_job_id: bufferJobId }, body, o),
    reportProgress: (jobId, body, o) => call("reportProgress", { job_id: jobId }, body, o),
    close: async () => {
      await pool.destroy();
    },
  };
}
