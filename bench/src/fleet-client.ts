import { createRouteClient, type ClaimJobResponse, type HeartbeatRequest, type JobView, type RouteClient, type RouteInput, type RouteName, type RouteResult } from "@fleet/contract";
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
 * Just enough of a worker and a client to drive the orchestrator over real HTTP (undici, keep-alive)
 * through the contract's route client, as the worker app and the CLI do — with no retries or
 * backoff that would hide latency.
 */
export class FleetClient {
  readonly #pool: Pool;
  readonly #client: RouteClient;

  constructor(options: FleetClientOptions) {
    this.#pool = new Pool(options.url, { connections: options.connections ?? 8, keepAliveTimeout: 60_000 });
    this.#client = createRouteClient({
      baseUrl: options.url,
      credentials: { internalApiKey: options.internalApiKey, apiKey: options.publicApiKey },
      dispatcher: this.#pool,
      timeoutMs: 60_000,
    });
  }

  async heartbeat(workerId: string, body: Partial<HeartbeatRequest> = {}): Promise<void> {
    await this.#call("heartbeat", { params: { worker_id: workerId }, body: { status: "idle", capacity: 1, ...body } }, 200);
  }

  claim(workerId: string, waitMs = 0): Promise<ClaimJobResponse> {
    return this.#call("claimJob", { body: { worker_id: workerId, wait_ms: waitMs } }, 200);
  }

  async succeed(bufferJobId: string): Promise<void> {
    await this.#call(
      "reportJobStatus",
      {
        params: { buffer_job_id: bufferJobId },
        body: { status: "succeeded", output_url: `http://127.0.0.1/outputs/${bufferJobId}.mp4`, error: null, metrics: {} },
      },
      200,
    );
  }

  createJob(body: Record<string, unknown> = {}): Promise<JobView> {
    return this.#call("createJob", { body: { video_url: "http://127.0.0.1:9/avatar.mp4", audio_url: "http://127.0.0.1:9/voice.wav", ...body } }, 201);
  }

  getJob(id: string): Promise<JobView> {
    return this.#call("getJob", { params: { id } }, 200);
  }

  /** Best effort: a job that already finished answers 409, which is fine here. */
  async cancelJob(id: string): Promise<void> {
    await this.#client.call("cancelJob", { params: { id } });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  async #call<N extends RouteName>(name: N, input: RouteInput, expect: number): Promise<RouteResult<N>> {
    const outcome = await this.#client.call(name, input);
    if (outcome.ok && outcome.status === expect) return outcome.value;
    if (outcome.ok) throw new HttpStatusError(outcome.status, `${name}: HTTP ${outcome.status}, expected ${expect}`);
    if (outcome.kind === "network") throw outcome.cause;
    throw new HttpStatusError(outcome.status, `${name}: HTTP ${outcome.status} ${outcome.text.slice(0, 300)}`);
  }
}
