import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRouteClient, type JobView, type RouteInput, type RouteName, type RouteOutcome, type RouteResult } from "@fleet/contract";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeCorruptFile, makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { startOrchestratorProcess, type OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { createDatabaseTest } from "@fleet/testing/postgres";
import { startWorkerProcess, type WorkerProcess, type WorkerProcessOptions } from "@fleet/testing/worker-process";
import pg from "pg";
import { getGlobalDispatcher } from "undici";

/** A vitest `test` whose `databaseUrl` is a fresh clone of the orchestrator's migrated schema. */
export const e2eTest = createDatabaseTest(migratePostgresUrl);

export interface WorkerRow {
  worker_id: string;
  status: string;
  last_heartbeat: Date | null;
  age_sec: number | null;
  capacity: number;
  engine: Record<string, unknown> | null;
  version: string | null;
  system: Record<string, unknown> | null;
}

/**
 * One real Fleet for a test: the built orchestrator over a cloned PostgreSQL database, a file
 * server with tiny real media, and built worker processes started on demand. Everything is
 * stopped by close(); nothing is mocked.
 */
export class Fleet {
  private readonly workers: WorkerProcess[] = [];

  private constructor(
    public orchestrator: OrchestratorProcess,
    readonly databaseUrl: string,
    readonly db: pg.Pool,
    readonly files: FileServer,
    readonly mediaDir: string,
    private readonly orchestratorEnv: Record<string, string>,
  ) {}

  static async start(databaseUrl: string, orchestratorEnv: Record<string, string> = {}): Promise<Fleet> {
    const mediaDir = await mkdtemp(path.join(tmpdir(), "fleet-e2e-media-"));
    await Promise.all([
      makeTestVideo(path.join(mediaDir, "avatar.mp4"), { seconds: 1 }),
      makeTestAudio(path.join(mediaDir, "voice.wav"), { seconds: 3 }),
      makeCorruptFile(path.join(mediaDir, "corrupt.mp4")),
    ]);
    const files = await startFileServer(mediaDir);
    const orchestrator = await startOrchestratorProcess({ databaseUrl, env: orchestratorEnv });
    const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    // The clone is dropped WITH (FORCE) after the test: an idle client may hear about it first.
    db.on("error", () => undefined);
    return new Fleet(orchestrator, databaseUrl, db, files, mediaDir, orchestratorEnv);
  }

  /** A built worker joined to this orchestrator (override anything with `env`). */
  async startWorker(workerId: string, opts: WorkerProcessOptions = {}): Promise<WorkerProcess> {
    const w = await startWorkerProcess({
      orchestratorUrl: this.orchestrator.url,
      internalApiKey: this.orchestrator.internalApiKey,
      workerId,
      ...opts,
      env: { BUFFER_POLL_INTERVAL_SEC: "0.5", CLAIM_WAIT_MS: "2000", ...opts.env },
    });
    this.workers.push(w);
    return w;
  }

  /** Restarts the orchestrator on the same port and database (an outage, then recovery). */
  async restartOrchestrator(downMs = 0): Promise<void> {
    const port = this.orchestrator.port;
    await this.orchestrator.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    this.orchestrator = await startOrchestratorProcess({
      databaseUrl: this.databaseUrl,
      port,
      internalApiKey: this.orchestrator.internalApiKey,
      publicApiKey: this.orchestrator.publicApiKey,
      env: this.orchestratorEnv,
    });
  }

  /** One call through the contract's route client with the public key; the outcome as data. */
  call<N extends RouteName>(name: N, input: RouteInput = {}): Promise<RouteOutcome<RouteResult<N>>> {
    const client = createRouteClient({
      baseUrl: this.orchestrator.url,
      credentials: { apiKey: this.orchestrator.publicApiKey },
      dispatcher: getGlobalDispatcher(),
      timeoutMs: 30_000,
    });
    return client.call(name, input);
  }

  async submit(overrides: Record<string, unknown> = {}): Promise<JobView> {
    const res = await this.call("createJob", {
      body: {
        video_url: this.files.urlFor("/avatar.mp4"),
        audio_url: this.files.urlFor("/voice.wav"),
        aspect_ratio: "9:16",
        resolution: "720p",
        ...overrides,
      },
    });
    if (!res.ok || res.status !== 201) throw new Error(`submit failed: ${describeOutcome(res)}`);
    return res.value;
  }

  async job(id: string): Promise<JobView> {
    const res = await this.call("getJob", { params: { id } });
    if (!res.ok) throw new Error(`job ${id}: ${describeOutcome(res)}`);
    return res.value;
  }

  async waitForJob(id: string, done: (j: JobView) => boolean, timeoutMs = 60_000): Promise<JobView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const j = await this.job(id).catch(() => null);
      if (j && done(j)) return j;
      if (Date.now() > deadline) throw new Error(`job ${id} did not reach the expected state: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  waitForStatus(id: string, status: JobView["status"], timeoutMs?: number): Promise<JobView> {
    return this.waitForJob(id, (j) => j.status === status, timeoutMs);
  }

  async workerRow(workerId: string): Promise<WorkerRow | null> {
    const { rows } = await this.db.query<WorkerRow>(
      `select worker_id, status, last_heartbeat, extract(epoch from now() - last_heartbeat)::float8 as age_sec,
              capacity, engine, version, system
         from buffer_workers where worker_id = $1`,
      [workerId],
    );
    return rows[0] ?? null;
  }

  /**
   * Waits until the worker has written `count` more heartbeats. An absence ("nothing was
   * claimed") asserted after this means something on a loaded box: the worker was alive and
   * deciding for that many beats, however slowly the clock ran.
   */
  async heartbeatsPass(workerId: string, count: number, timeoutMs = 60_000): Promise<void> {
    const seen = new Set<number>();
    const start = (await this.workerRow(workerId))?.last_heartbeat?.getTime();
    const deadline = Date.now() + timeoutMs;
    while (seen.size < count) {
      if (Date.now() > deadline) throw new Error(`worker ${workerId}: ${seen.size} of ${count} heartbeats within ${timeoutMs} ms`);
      const beat = (await this.workerRow(workerId))?.last_heartbeat?.getTime();
      if (beat !== undefined && beat !== start) seen.add(beat);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async attempts(jobId: string): Promise<Array<{ buffer_job_id: string; worker_id: string; status: string }>> {
    const { rows } = await this.db.query<{ buffer_job_id: string; worker_id: string; status: string }>(
      "select buffer_job_id, worker_id, status from buffer_jobs where job_id = $1 order by claimed_at",
      [jobId],
    );
    return rows;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.kill()));
    await this.orchestrator.kill().catch(() => undefined);
    await this.files.close();
    await this.db.end();
    await rm(this.mediaDir, { recursive: true, force: true });
  }
}

function describeOutcome(outcome: RouteOutcome<unknown>): string {
  if (outcome.ok) return `HTTP ${outcome.status}`;
  return outcome.kind === "network" ? String(outcome.cause) : `HTTP ${outcome.status} ${outcome.text}`;
}
