import { stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { timingSafeEqual } from "node:crypto";
import { GenerateRequest, type GenerateFailure, type GenerateSuccess } from "@fleet/contract";
import { sendFileRange } from "@fleet/runtime";
import type { Logger } from "./logger.js";
import { faultOf } from "./errors/job-error.js";
import type { JobOutcome } from "./pipeline/run-job.js";

/** The original's health path, kept as one constant (its docs probed /health, which 404ed). */
const HEALTH_PATH = "/hc";

const MAX_BODY_BYTES = 1024 * 1024;
/** A /generate body is a few hundred bytes: a client still sending after this is stalling us. */
const BODY_TIMEOUT_MS = 10_000;
/** Tells a caller refused for capacity when to try again; a short job takes about this long. */
const RETRY_AFTER_SEC = 5;

/** Why /generate cannot take a job now, when it cannot. */
export type GenerateRefusal = "draining" | "full";

export interface WorkerHttpHandlers {
  /** `privileged`: the caller showed the generate key, so fencing tokens may be listed. */
  healthz(opts: { privileged: boolean }): Record<string, unknown>;
  metrics(): string;
  generate(request: GenerateRequest, signal: AbortSignal): Promise<JobOutcome> | GenerateRefusal;
  /** Directory served under /outputs/ (local storage), or null. */
  outputsDir: string | null;
  /** /generate exists only when this is set: an open port must not run jobs for strangers. */
  generateApiKey: string | null;
  log: Logger;
}

class BodyError extends Error {
  constructor(
    readonly status: 400 | 408 | 413,
    message: string,
  ) {
    super(message);
  }
}

export interface WorkerHttpServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * The worker's own port (8000, as the original): /hc, /healthz, /metrics, the original
 * POST /generate for queue-style callers, and /outputs/ for the local store. Plain node:http:
 * five routes do not need a framework, and nothing here may share a blocked loop with a job.
 */
export async function startHttpServer(opts: { host: string; port: number; handlers: WorkerHttpHandlers }): Promise<WorkerHttpServer> {
  const h = opts.handlers;
  const server = http.createServer((req, res) => {
    void route(req, res).catch((err: unknown) => {
      h.log.error({ err, method: req.method, url: req.url }, "http_request_failed");
      if (!res.headersSent) sendJson(res, 500, { status: "failed", error: "internal error" });
      else res.destroy();
    });
  });
  // requestTimeout covers receiving the request only, not the answer, so /generate may still hold
  // its response for the whole job; readBody's own deadline answers a stalled body sooner.
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  server.keepAliveTimeout = 5_000;

  async function route(req: http.IncomingMessage, res: http.ServerResponse) {
    let p: string;
    try {
      p = new URL(req.url ?? "/", "http://worker").pathname;
    } catch {
      return sendJson(res, 400, { detail: "malformed request target" });
    }
    if (req.method === "GET" && p === HEALTH_PATH) return sendJson(res, 200, { status: "ok" });
    if (req.method === "GET" && p === "/healthz") {
      return sendJson(res, 200, h.healthz({ privileged: h.generateApiKey !== null && keyMatches(req, h.generateApiKey) }));
    }
    if (req.method === "GET" && p === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      return void res.end(h.metrics());
    }
    if (req.method === "POST" && p === "/generate" && h.generateApiKey) return generate(req, res, h.generateApiKey);
    if ((req.method === "GET" || req.method === "HEAD") && p.startsWith("/outputs/") && h.outputsDir) {
      let key: string;
      try {
        key = decodeURIComponent(p.slice("/outputs/".length));
      } catch {
        return sendJson(res, 400, { detail: "malformed percent-encoding in path" });
      }
      return serveOutput(h.outputsDir, key, req, res);
    }
    sendJson(res, 404, { detail: "Not Found" });
  }

  async function generate(req: http.IncomingMessage, res: http.ServerResponse, apiKey: string) {
    if (!keyMatches(req, apiKey)) {
      req.resume();
      return sendJson(res, 401, { detail: "missing or wrong X-API-Key" });
    }
    let text: string;
    try {
      text = await readBody(req, BODY_TIMEOUT_MS);
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      res.setHeader("connection", "close");
      sendJson(res, err.status, { detail: err.message });
      res.on("finish", () => req.socket.destroy());
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return sendJson(res, 422, { detail: [{ loc: ["body"], msg: "body is not valid JSON", type: "value_error.json" }] });
    }
    const parsed = GenerateRequest.safeParse(body);
    if (!parsed.success) {
      // FastAPI's validation shape, which the original's callers already handle.
      return sendJson(res, 422, {
        detail: parsed.error.issues.map((i) => ({ loc: ["body", ...i.path.map(String)], msg: i.message, type: i.code })),
      });
    }
    const controller = new AbortController();
    // A caller that hangs up frees the GPU instead of leaving a job nobody waits for.
    res.on("close", () => {
      if (!res.writableEnded) controller.abort("released");
    });
    const run = h.generate(parsed.data, controller.signal);
    if (run === "draining") return sendJson(res, 503, { detail: "worker is draining" });
    if (run === "full") {
      // Claimed jobs and /generate calls share BUFFER_CAPACITY; a caller waits its turn outside.
      res.setHeader("retry-after", String(RETRY_AFTER_SEC));
      return sendJson(res, 429, { detail: "worker is at capacity" });
    }
    let outcome: JobOutcome;
    try {
      outcome = await run;
    } catch (err) {
      if (controller.signal.aborted) return;
      throw err;
    }
    if (outcome.status === "succeeded") {
      const ok: GenerateSuccess = {
        status: "success",
        output_url: outcome.outputUrl,
        musetalk_job_id: parsed.data.musetalk_job_id,
        metrics: outcome.metrics,
        error: null,
      };
      return sendJson(res, 200, ok);
    }
    const e = outcome.errorInfo;
    const failed: GenerateFailure = {
      status: "failed",
      error_type: e.error_type,
      error_message: e.message,
      stage: e.stage,
      details: e.details ?? {},
      retryable: e.retryable,
      stage_times: (outcome.metrics.stage_times as Record<string, unknown> | undefined) ?? {},
      stack_trace: null,
      fault: e.fault ?? faultOf(e.error_type),
    };
    // A job whose inputs failed is the caller's problem (422), never a server error.
    sendJson(res, failed.fault === "job" ? 422 : 500, failed);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  return {
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function keyMatches(req: http.IncomingMessage, expected: string): boolean {
  const got = req.headers["x-api-key"] ?? req.headers["x-internal-api-key"];
  const value = Array.isArray(got) ? got[0] : got;
  if (!value) return false;
  const a = Buffer.from(value);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The body with a size cap and a deadline: a client that trickles or never finishes is cut off. */
function readBody(req: http.IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: BodyError) => {
      clearTimeout(timer);
      // Stop reading but keep the socket: the caller still gets its 4xx before the close.
      req.removeAllListeners("data");
      req.pause();
      reject(err);
    };
    const timer = setTimeout(() => fail(new BodyError(408, `request body not received within ${timeoutMs} ms`)), timeoutMs);
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) fail(new BodyError(413, `body over ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    req.on("end", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", () => fail(new BodyError(400, "request body aborted")));
  });
}

const CONTENT_TYPES: Record<string, string> = { ".mp4": "video/mp4", ".json": "application/json" };

/** Files of the local store, with single byte ranges so browsers and ffprobe can seek. */
async function serveOutput(dir: string, key: string, req: http.IncomingMessage, res: http.ServerResponse) {
  const root = path.resolve(dir);
  const file = path.resolve(root, key);
  if (!file.startsWith(root + path.sep)) return sendJson(res, 404, { detail: "Not Found" });
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) return sendJson(res, 404, { detail: "Not Found" });
  sendFileRange(req, res, { path: file, size: info.size, contentType: CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream" });
}
