import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { closeServer, listen, readJsonBody, sendJson } from "./http-util.js";

/**
 * A stand-in for the ORIGINAL orchestrator (the FastAPI service Fleet replaces), so a Fleet
 * worker can be tested against it before the orchestrator is switched (a worker-first
 * migration). Its code was never published; this is built from the routes, bodies and replies
 * its workers used: every internal reply is `{"detail":"ok"}` or `{"job": ...}`, nothing Fleet
 * added (no leases, no attempts, no cancel or drain lists), a FastAPI-style `{"detail": ...}`
 * for errors, the `X-Internal-API-Key` header compared case-insensitively. It is deliberately
 * no stricter and no cleverer than the original: no fencing, no long-poll, no retry policy.
 */

export type OriginalJobStatus = "pending_buffer" | "running" | "succeeded" | "failed";

export interface OriginalJob {
  id: string;
  status: OriginalJobStatus;
  video_url: string;
  audio_url: string;
  aspect_ratio: string;
  resolution: string;
  buffer_job_id: string | null;
  worker_id: string | null;
  progress: number | null;
  phase: string | null;
  output_url: string | null;
  metrics: Record<string, unknown> | null;
  error: string | null;
  /** Every progress body received, in order. */
  progressReports: Array<Record<string, unknown>>;
  /** Every status body received for this job's buffer attempt. */
  statusReports: Array<Record<string, unknown>>;
}

/** A row of the original's `buffer_workers` table, as the operators' SQL saw it. */
export interface OriginalBufferWorker {
  worker_id: string;
  status: string;
  gpu_class: string | null;
  capacity: number | null;
  error: string | null;
  last_heartbeat: Date;
  heartbeats: number;
}

export interface OriginalRequest {
  method: string;
  path: string;
  status: number;
  at: number;
}

export interface OriginalOrchestrator {
  url: string;
  internalApiKey: string;
  /** Queues a job for the buffer tier, as the original did when no main worker could take it. */
  enqueue(input: { video_url: string; audio_url: string; aspect_ratio?: string; resolution?: string }): OriginalJob;
  job(id: string): OriginalJob | undefined;
  worker(id: string): OriginalBufferWorker | undefined;
  requests(): OriginalRequest[];
  /**
   * A 5xx spell: every request (the public API and /health included) answers `status` with the
   * HTML page a proxy in front of a dead app gives (the original sat behind Cloudflare, whose
   * 502 page its workers logged), until `endOutage()`.
   */
  startOutage(status?: 500 | 502 | 503 | 504): void;
  endOutage(): void;
  /** Called after a claim hands out a job (tests start an outage mid-job from here). */
  onClaim: ((job: OriginalJob) => void) | null;
  close(): Promise<void>;
}

const HEARTBEAT = /^\/internal\/buffer\/workers\/([^/]+)\/heartbeat$/;
const STATUS = /^\/internal\/buffer\/jobs\/([^/]+)\/status$/;
const PROGRESS = /^\/internal\/jobs\/([^/]+)\/progress$/;
const PUBLIC_JOB = /^\/v1\/avatar\/jobs\/([^/]+)$/;

export async function startOriginalOrchestrator(opts: { internalApiKey?: string } = {}): Promise<OriginalOrchestrator> {
  const internalApiKey = opts.internalApiKey ?? `original-${randomUUID()}`;
  const jobs = new Map<string, OriginalJob>();
  const byBufferJobId = new Map<string, OriginalJob>();
  const workers = new Map<string, OriginalBufferWorker>();
  const log: OriginalRequest[] = [];
  let outage: number | null = null;

  function enqueue(input: { video_url: string; audio_url: string; aspect_ratio?: string; resolution?: string }): OriginalJob {
    const job: OriginalJob = {
      id: randomUUID(),
      status: "pending_buffer",
      video_url: input.video_url,
      audio_url: input.audio_url,
      aspect_ratio: input.aspect_ratio ?? "9:16",
      resolution: input.resolution ?? "720p",
      buffer_job_id: null,
      worker_id: null,
      progress: null,
      phase: null,
      output_url: null,
      metrics: null,
      error: null,
      progressReports: [],
      statusReports: [],
    };
    jobs.set(job.id, job);
    return job;
  }

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? "GET";
    if (method === "GET" && path === "/health") return sendJson(res, 200, { status: "ok", salad_ok: true });
    // Node lower-cases header names, so X-Internal-API-Key and X-Internal-Api-Key both land here.
    if (req.headers["x-internal-api-key"] !== internalApiKey) return sendJson(res, 401, { detail: "Invalid API key" });
    const body = method === "POST" ? await readJsonBody(req) : undefined;
    const fields = (body !== null && typeof body === "object" ? body : {}) as Record<string, unknown>;

    if (method === "POST" && path === "/v1/avatar/jobs") {
      if (typeof fields.video_url !== "string" || typeof fields.audio_url !== "string") return validationError(res, "video_url");
      const job = enqueue({
        video_url: fields.video_url,
        audio_url: fields.audio_url,
        aspect_ratio: typeof fields.aspect_ratio === "string" ? fields.aspect_ratio : undefined,
        resolution: typeof fields.resolution === "string" ? fields.resolution : undefined,
      });
      return sendJson(res, 200, { id: job.id, status: "queued", output_url: null, metrics: null, error: null });
    }
    let m = PUBLIC_JOB.exec(path);
    if (method === "GET" && m) {
      const job = jobs.get(decodeURIComponent(m[1] ?? ""));
      if (!job) return sendJson(res, 404, { detail: "Job not found" });
      return sendJson(res, 200, {
        id: job.id,
        status: job.status === "pending_buffer" ? "queued" : job.status,
        output_url: job.output_url,
        metrics: job.metrics,
        error: job.error,
        input: { video_url: job.video_url, audio_url: job.audio_url, aspect_ratio: job.aspect_ratio, resolution: job.resolution },
      });
    }

    m = HEARTBEAT.exec(path);
    if (method === "POST" && m) {
      // Its workers sent only idle or busy; anything else is assumed to fail its model's validation.
      if (fields.status !== "idle" && fields.status !== "busy") return validationError(res, "status");
      const id = decodeURIComponent(m[1] ?? "");
      const row = workers.get(id);
      workers.set(id, {
        worker_id: id,
        status: fields.status,
        gpu_class: typeof fields.gpu_class === "string" ? fields.gpu_class : null,
        capacity: typeof fields.capacity === "number" ? fields.capacity : null,
        error: typeof fields.error === "string" ? fields.error : null,
        last_heartbeat: new Date(),
        heartbeats: (row?.heartbeats ?? 0) + 1,
      });
      return sendJson(res, 200, { detail: "ok" });
    }

    if (method === "POST" && path === "/internal/buffer/jobs/claim") {
      if (typeof fields.worker_id !== "string" || fields.worker_id === "") return validationError(res, "worker_id");
      const job = [...jobs.values()].find((j) => j.status === "pending_buffer");
      if (!job) return sendJson(res, 200, { job: null });
      job.status = "running";
      job.worker_id = fields.worker_id;
      job.buffer_job_id = randomUUID();
      byBufferJobId.set(job.buffer_job_id, job);
      sendJson(res, 200, {
        job: {
          buffer_job_id: job.buffer_job_id,
          musetalk_job_id: job.id,
          video_url: job.video_url,
          audio_url: job.audio_url,
          aspect_ratio: job.aspect_ratio,
          resolution: job.resolution,
        },
      });
      stub.onClaim?.(job);
      return;
    }

    m = STATUS.exec(path);
    if (method === "POST" && m) {
      const job = byBufferJobId.get(decodeURIComponent(m[1] ?? ""));
      if (!job) return sendJson(res, 404, { detail: "Buffer job not found" });
      if (fields.status !== "succeeded" && fields.status !== "failed") return validationError(res, "status");
      job.statusReports.push(fields);
      job.status = fields.status;
      job.output_url = typeof fields.output_url === "string" ? fields.output_url : null;
      job.metrics = fields.metrics !== null && typeof fields.metrics === "object" ? (fields.metrics as Record<string, unknown>) : null;
      job.error = typeof fields.error === "string" ? fields.error : null;
      if (fields.status === "succeeded") job.progress = 1;
      return sendJson(res, 200, { detail: "ok" });
    }

    m = PROGRESS.exec(path);
    if (method === "POST" && m) {
      const job = jobs.get(decodeURIComponent(m[1] ?? ""));
      if (!job) return sendJson(res, 404, { detail: "Job not found" });
      job.progressReports.push(fields);
      if (typeof fields.progress === "number") job.progress = fields.progress;
      if (typeof fields.phase === "string") job.phase = fields.phase;
      return sendJson(res, 200, { detail: "ok" });
    }

    return sendJson(res, 404, { detail: "Not Found" });
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    res.on("finish", () => log.push({ method: req.method ?? "GET", path, status: res.statusCode, at: Date.now() }));
    if (outage !== null) {
      req.resume();
      const page = `<html><head><title>${outage} Bad gateway</title></head><body>origin unreachable</body></html>`;
      res.writeHead(outage, { "content-type": "text/html", "content-length": Buffer.byteLength(page) });
      res.end(page);
      return;
    }
    route(req, res, path).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { detail: err instanceof Error ? err.message : String(err) });
    });
  });
  const url = await listen(server);

  const stub: OriginalOrchestrator = {
    url,
    internalApiKey,
    enqueue,
    job: (id) => jobs.get(id),
    worker: (id) => workers.get(id),
    requests: () => [...log],
    startOutage(status = 502) {
      outage = status;
    },
    endOutage() {
      outage = null;
    },
    onClaim: null,
    close: () => closeServer(server),
  };
  return stub;
}

/** FastAPI's 422 body: a list of problems under `detail`, no `status` field. */
function validationError(res: ServerResponse, field: string): void {
  sendJson(res, 422, { detail: [{ loc: ["body", field], msg: "field required or invalid", type: "value_error" }] });
}
