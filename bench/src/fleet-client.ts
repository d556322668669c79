import { HEADERS, pathFor, routes, type ClaimJobResponse, type HeartbeatRequest, type JobView } from "@fleet/contract";
import { Pool } from "undici";

/** A reply with an unexpected status; `status` lets callers retry 5xx as a real worker would. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpStatusError";
  }
}

export interface FleetClientOptions {
  url: string;
  internalApiKey: string;
  publicApiKey: string;
  /** Sockets to keep open: one per concurrent caller, as real workers each hold their own. */
  connections?: number;
}

/**
 * Just enough of a worker and a client to drive the orchestrator over real HTTP (undici, keep-alive),
 * the way the worker app and API clients do — with no retries or backoff that would hide latency.
 */
export class FleetClient {
  readonly #pool: Pool;
  readonly #internal: Record<string, string>;
  readonly #public: Record<string, string>;

  constructor(options: FleetClientOptions) {
    this.#pool = new Pool(options.url, { connections: options.connections ?? 8, keepAliveTimeout: 60_000, bodyTimeout: 60_000, headersTimeout: 60_000 });
    this.#internal = { "content-type": "application/json", [HEADERS.internalApiKey]: options.internalApiKey };
    this.#public = { "content-type": "application/json", [HEADERS.apiKey]: options.publicApiKey };
  }

  async heartbeat(workerId: string, body: Partial<HeartbeatRequest> = {}): Promise<void> {
    await this.#post(pathFor(routes.heartbeat.path, { worker_id: workerId }), { status: "idle", capacity: 1, ...body }, this.#internal, 200);
  }

  claim(workerId: string, waitMs = 0): Promise<ClaimJobResponse> {
    return this.#post(routes.claimJob.path, { worker_id: workerId, wait_ms: waitMs }, this.#internal, 200) as Promise<ClaimJobResponse>;
  }

  async succeed(bufferJobId: string): Promise<void> {
    await this.#post(
      pathFor(routes.reportJobStatus.path, { buffer_job_id: bufferJobId }),
      { status: "succeeded", output_url: `http://127.0.0.1/outputs/${bufferJobId}.mp4`, error: null, metrics: {} },
      this.#internal,
      200,
    );
  }

  createJob(body: Record<string, unknown> = {}): Promise<JobView> {
    return this.#post(
      routes.createJob.path,
      { video_url: "http://127.0.0.1:9/avatar.mp4", audio_url: "http://127.0.0.1:9/voice.wav", ...body },
      this.#public,
      201,
    ) as Promise<JobView>;
  }

  async getJob(id: string): Promise<JobView> {
    const res = await this.#pool.request({ method: "GET", path: pathFor(routes.getJob.path, { id }), headers: this.#public });
    const json = await res.body.json();
    if (res.statusCode !== 200) throw new Error(`GET job ${id}: HTTP ${res.statusCode} ${JSON.stringify(json)}`);
    return json as JobView;
  }

  async cancelJob(id: string): Promise<void> {
    const res = await this.#pool.request({ method: "DELETE", path: pathFor(routes.cancelJob.path, { id }), headers: this.#public });
    await res.body.dump();
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #post(path: string, body: unknown, headers: Record<string, string>, expect: number): Promise<unknown> {
    const res = await this.#pool.request({ method: "POST", path, headers, body: JSON.stringify(body) });
    const text = await res.body.text();
    if (res.statusCode !== expect) throw new HttpStatusError(res.statusCode, `POST ${path}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
    return JSON.parse(text) as unknown;
  }
}
