import { Pool } from "undici";
import type { z } from "zod";
import {
  ErrorBody,
  HEADERS,
  pathFor,
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
      bodyExcerpt: string;
      /** The caller's own signal ended the call (shutdown, drain). */
      aborted: boolean;
    };

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

type RouteName = "heartbeat" | "claimJob" | "reportJobStatus" | "reportProgress";

/**
 * Replies are read with the contract's lenient `*Reply` schemas, not the `responses` a Fleet
 * orchestrator promises: the same worker must also work against the original orchestrator,
 * whose heartbeat answers only `{"detail":"ok"}` (a worker-first migration).
 */
const replySchemas: Record<RouteName, z.ZodType> = {
  heartbeat: HeartbeatReply,
  claimJob: ClaimJobReply,
  reportJobStatus: JobStatusReportReply,
  reportProgress: ProgressReportReply,
};

/**
 * The worker side of the worker API (docs/wire-protocol.md), one method per route of the contract's table.
 * One undici Pool per orchestrator origin: keep-alive is bounded and a socket that errors is
 * dropped, so a restarted orchestrator is reached again on the next call (the original's
 * long-lived httpx client got stuck). Every body is consumed, success or not.
 */
export function createOrchestratorClient(opts: { baseUrl: string; apiKey: string | null; workerToken?: string | null; timeoutMs: number }): OrchestratorClient {
  // A per-worker token lets this box act only as itself; the shared key (the original's mode) is
  // sent only without one, since the orchestrator would let it act as any worker.
  const credential: Record<string, string> = opts.workerToken
    ? { [HEADERS.authorization]: `Bearer ${opts.workerToken}` }
    : { [HEADERS.internalApiKey]: opts.apiKey ?? "" };
  const base = new URL(opts.baseUrl);
  const prefix = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(base.origin, {
    connectTimeout: Math.min(opts.timeoutMs, 10_000),
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 30_000,
    // Heartbeats must never queue behind a long-polling claim on the same socket.
    pipelining: 1,
  });

  async function call<T>(
    route: RouteName,
    params: Record<string, string>,
    body: unknown,
    callOpts: CallOptions = {},
  ): Promise<ClientResult<T>> {
    const def = routes[route];
    const timeoutMs = callOpts.timeoutMs ?? opts.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs + 1_000);
    const signal = callOpts.signal ? AbortSignal.any([callOpts.signal, timeout]) : timeout;
    let statusCode: number;
    let text: string;
    try {
      const res = await pool.request({
        method: def.method,
        path: prefix + pathFor(def.path, params),
        headers: { "content-type": "application/json", ...credential },
        body: JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
      });
      statusCode = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const aborted = callOpts.signal?.aborted === true;
      const message = timeout.aborted && !aborted ? `timed out after ${timeoutMs} ms` : describeNetworkError(err);
      return { ok: false, statusCode: null, code: null, message, bodyExcerpt: "", aborted };
    }

    const json = parseJson(text);
    if (statusCode >= 200 && statusCode < 300) {
      const parsed = replySchemas[route].safeParse(json);
      if (parsed.success) return { ok: true, statusCode, value: parsed.data as T };
      return {
        ok: false,
        statusCode,
        code: null,
        message: `unexpected response body for ${def.method} ${def.path}`,
        bodyExcerpt: excerpt(text),
        aborted: false,
      };
    }
    const errorBody = ErrorBody.safeParse(json);
    return {
      ok: false,
      statusCode,
      code: errorBody.success ? errorBody.data.error.code : null,
      message: errorBody.success ? errorBody.data.error.message : `HTTP ${statusCode}`,
      bodyExcerpt: excerpt(text),
      aborted: false,
    };
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
