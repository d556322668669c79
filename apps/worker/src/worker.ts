import { randomUUID } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { type HeartbeatReply, type SystemFacts, type WorkerReportedStatus } from "@fleet/contract";
import { startClaimLoop, type ClaimLoop } from "./claim-loop.js";
import { describeConfig, type Config } from "./config.js";
import { startEngineMonitor, type EngineMonitor } from "./engine-monitor.js";
import { startHeartbeatLoop, type HeartbeatLoop } from "./heartbeat-loop.js";
import { startHttpServer, type WorkerHttpServer } from "./http-server.js";
import { createInferenceDriver } from "./inference/create-inference-driver.js";
import type { InferenceDriver } from "./inference/inference-driver.js";
import { createJobRunner, type JobRunner } from "./job-runner.js";
import type { Logger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { createOrchestratorClient, type OrchestratorClient } from "./orchestrator-client.js";
import { createOutbox, type Outbox } from "./outbox.js";
import { createDownloadAgent } from "./pipeline/download.js";
import { runJob, type JobInput } from "./pipeline/run-job.js";
import { createProgressReporter } from "./progress-reporter.js";
import { createStorage } from "./storage/create-storage.js";
import type { OutputStorage } from "./storage/output-storage.js";
import { collectSystemFacts, readGpu, type GpuFacts } from "./system-facts.js";
import { WakeSignal } from "@fleet/runtime";
import { describeWorkerHealth, registerWorkerGauges, type WorkerStateSources } from "./worker-status.js";
import { wellFormed } from "./util/well-formed.js";

export interface WorkerParts {
  /** Replace the engine or the store (tests); by default they follow the config. */
  driver?: InferenceDriver;
  storage?: OutputStorage;
}

export interface Worker {
  readonly httpUrl: string;
  readonly workerId: string;
  /** SIGTERM: stop claiming, beat `draining`, finish or release running jobs, flush reports, stop. */
  drain(): Promise<void>;
  /** Second SIGTERM: abort running jobs now (reported `released`) and finish the drain quickly. */
  abortNow(): void;
}

/**
 * Builds every part from the config and starts them: HTTP first (so /hc answers whatever else
 * happens), then the engine monitor, then — only when configured — the buffer loop: outbox
 * re-send, heartbeat, claim loop.
 */
export async function startWorker(config: Config, log: Logger, parts: WorkerParts = {}): Promise<Worker> {
  const version = config.version ?? (await readPackageVersion());
  log.info({ version, ...describeConfig(config) }, "worker_starting");
  await mkdir(config.workDir, { recursive: true });

  const metrics = new Metrics();
  const changes = new WakeSignal();
  const driver = parts.driver ?? createInferenceDriver(config, log);
  let httpServer: WorkerHttpServer | null = null;
  // The local store's URLs point at this process's /outputs/ unless LOCAL_STORAGE_BASE_URL says otherwise.
  const storage = parts.storage ?? createStorage(config, log, () => `${httpServer?.url ?? `http://127.0.0.1:${config.port}`}/outputs`);
  const downloadAgent = createDownloadAgent({ allowPrivate: config.allowPrivateNetworkUrls, connectTimeoutMs: config.limits.downloadConnectTimeoutMs });
  const client: OrchestratorClient | null =
    config.orchestratorUrl && (config.internalApiKey || config.workerToken)
      ? createOrchestratorClient({
          baseUrl: config.orchestratorUrl,
          apiKey: config.internalApiKey,
          workerToken: config.workerToken,
          timeoutMs: config.orchestratorTimeoutMs,
        })
      : null;
  const buffer = config.buffer;
  const outbox: Outbox | null =
    buffer && client ? createOutbox({ dir: path.join(config.workDir, "outbox"), client, log, timeoutMs: config.orchestratorTimeoutMs }) : null;

  let gpu: GpuFacts | null = null;
  let system: SystemFacts | null = null;
  let draining = false;
  let drainRequested = false;
  let forced = false;
  const gpuClass = () => config.gpuClass ?? gpu?.name ?? "unknown";

  const countOutcome = metrics.counter("fleet_worker_jobs_total", "Jobs ended on this worker, by outcome.");
  const countSeconds = metrics.counter("fleet_worker_job_seconds_total", "Wall time spent in jobs, by outcome.");
  const countBeats = metrics.counter("fleet_worker_heartbeats_total", "Heartbeats sent, by result and HTTP status.");

  const runner: JobRunner = createJobRunner({
    capacity: config.capacity,
    workerId: config.workerId,
    log,
    outbox,
    changes,
    execute: (input, ctx) =>
      runJob(input, { config, log, driver, storage, downloadAgent, gpuClass: gpuClass(), workerId: config.workerId, lipSync: () => monitor.current().engine.lip_sync ?? null }, ctx),
    progressFor: (input: JobInput, onLeaseLost) =>
      createProgressReporter({
        client,
        workerId: config.workerId,
        jobId: input.jobId,
        bufferJobId: input.bufferJobId,
        timeoutMs: config.orchestratorTimeoutMs,
        log,
        onLeaseLost,
      }),
    onOutcome: (outcome, seconds) => {
      countOutcome({ outcome });
      countSeconds({ outcome }, seconds);
    },
  });

  const monitor: EngineMonitor = startEngineMonitor({
    driver,
    storage,
    intervalMs: Math.max(250, Math.min(config.heartbeatIntervalMs, 5_000)),
    log,
    busy: () => runner.running() > 0,
    onChange: () => changes.notify(),
  });

  // Facts are gathered in the background: the first heartbeat never waits for them (§8.27).
  const factsController = new AbortController();
  let factsTimer: NodeJS.Timeout | null = null;
  const refreshFacts = async () => {
    gpu = await readGpu(factsController.signal).catch(() => null);
    system = await collectSystemFacts({ workDir: config.workDir, gpu }).catch(() => system);
    if (!factsController.signal.aborted) factsTimer = setTimeout(() => void refreshFacts(), 60_000).unref();
  };
  void refreshFacts();

  function reportedStatus(): { status: WorkerReportedStatus; error: string | null } {
    if (draining || drainRequested) return { status: "draining", error: null };
    if (runner.running() > 0) return { status: "busy", error: null };
    const { engine, storage: st } = monitor.current();
    if (engine.state === "error" || engine.state === "unavailable") return { status: "error", error: `inference engine ${engine.state}: ${engine.detail ?? ""}`.trim() };
    if (!st.ready && st.detail !== "not checked yet") return { status: "error", error: `storage not ready: ${st.detail}` };
    return { status: "idle", error: null };
  }

  function onReply(reply: HeartbeatReply) {
    for (const id of reply.cancel) runner.abort(id, "cancelled");
    for (const id of reply.lost) runner.abort(id, "lost");
    if (reply.drain !== drainRequested) {
      drainRequested = reply.drain;
      log.info({ workerId: config.workerId }, reply.drain ? "buffer_worker_drain_requested" : "buffer_worker_undrained");
      changes.notify();
    }
  }

  let heartbeat: HeartbeatLoop | null = null;
  let claimLoop: ClaimLoop | null = null;

  const stateSources: WorkerStateSources = {
    workerId: config.workerId,
    version,
    bufferLoop: buffer ? "running" : (config.bufferDisabledReason ?? "not_enabled"),
    driverName: driver.name,
    runner,
    outbox,
    monitor,
    heartbeat: () => heartbeat,
    draining: () => draining || drainRequested,
  };
  registerWorkerGauges(metrics, stateSources);

  httpServer = await startHttpServer({
    host: config.host,
    port: config.port,
    handlers: {
      log,
      generateApiKey: config.generateApiKey,
      outputsDir: config.storage.kind === "local" && !parts.storage ? config.storage.dir : null,
      metrics: () => metrics.render(),
      healthz: ({ privileged }) => describeWorkerHealth(stateSources, { privileged }),
      generate: (req, signal) =>
        draining
          ? "draining"
          : runner.freeSlots() === 0
            ? "full"
            : runner.runDirect(
              {
                attemptId: `generate-${randomUUID()}`,
                bufferJobId: null,
                jobId: req.musetalk_job_id,
                attempt: null,
                videoUrl: req.video_url,
                audioUrl: req.audio_url,
                aspectRatio: req.aspect_ratio,
                resolution: req.resolution,
                params: req.params,
              },
              signal,
            ),
    },
  });
  log.info({ url: httpServer.url, port: httpServer.port }, "worker_http_listening");
  if (!config.generateApiKey) {
    log.info({ hint: "set GENERATE_API_KEY to serve the original POST /generate on this port" }, "worker_generate_disabled");
  }

  if (buffer && client && outbox) {
    log.info({ workerId: buffer.workerId, orchestratorUrl: buffer.orchestratorUrl, capacity: config.capacity }, "buffer_worker_loop_starting");
    await outbox.start();
    heartbeat = startHeartbeatLoop({
      client,
      workerId: buffer.workerId,
      intervalMs: config.heartbeatIntervalMs,
      timeoutMs: config.orchestratorTimeoutMs,
      log,
      buildBody: () => {
        const reported = reportedStatus();
        const { error } = reported;
        // The original orchestrator knows only idle and busy; the reason rides in `error`. Until a
        // reply proves the orchestrator is Fleet, speak the original's words: a first beat it
        // refuses would leave the protocol unlearned and the worker locked out.
        const status =
          heartbeat?.snapshot().protocol !== "fleet" && reported.status !== "idle" && reported.status !== "busy"
            ? runner.running() > 0
              ? "busy"
              : "idle"
            : reported.status;
        const engine = monitor.current().engine;
        // Engine details and errors are foreign text; keep them storable (see util/well-formed.ts).
        return wellFormed({
          status,
          gpu_class: gpuClass(),
          capacity: config.capacity,
          error,
          active_jobs: runner.heldBufferJobIds().slice(0, 64),
          version,
          engine,
          system,
        });
      },
      onReply,
      onHealthChange: (healthy) => {
        if (healthy) outbox.wake();
        changes.notify();
      },
      onBeat: ({ ok, statusCode }) => countBeats({ result: ok ? "ok" : "error", status_code: String(statusCode ?? "none") }),
    });
    claimLoop = startClaimLoop({
      client,
      workerId: buffer.workerId,
      waitMs: config.claimWaitMs,
      idlePollMs: config.heartbeatIntervalMs,
      timeoutMs: config.orchestratorTimeoutMs,
      log,
      changes,
      blockedBy: () => {
        if (draining) return "draining";
        if (drainRequested) return "drain_requested";
        if (!heartbeat?.snapshot().healthy) return "heartbeat_not_accepted";
        const running = runner.running();
        if (!monitor.readyToClaim(running)) {
          const r = monitor.current();
          return r.storage.ready ? `engine_${r.engine.state}` : "storage_not_ready";
        }
        if (runner.freeSlots() === 0) return "at_capacity";
        return null;
      },
      onJob: (job) => runner.startClaimed(job),
      onUnrunnable: (job, problem) => {
        const message = `claimed job is malformed: ${problem}`;
        void outbox.deliver({
          buffer_job_id: job.buffer_job_id,
          musetalk_job_id: job.musetalk_job_id ?? "unknown",
          worker_id: config.workerId,
          written_at: new Date().toISOString(),
          report: {
            status: "failed",
            error: message,
            output_url: null,
            metrics: null,
            // Its input is what is wrong: no other worker would do better, so never retried.
            error_info: { error_type: "media_error", stage: "validation", message, retryable: false, details: null },
          },
        });
      },
    });
  } else if (config.bufferDisabledReason === "missing_config") {
    log.warn({ workerId: config.workerId, missing: config.bufferMissing }, "buffer_worker_disabled_missing_config");
  } else {
    log.info({ hint: "set BUFFER_WORKER_ID (or WORKER_MODE=buffer) to join an orchestrator" }, "buffer_worker_not_enabled");
  }

  let drainPromise: Promise<void> | null = null;

  async function drain() {
    draining = true;
    changes.notify();
    log.info({ workerId: config.workerId, running: runner.running(), graceSec: config.drainGraceMs / 1000 }, "buffer_worker_draining");
    await claimLoop?.stop();
    if (heartbeat) await heartbeat.beatNow();
    const finished = await runner.whenIdle(forced ? 0 : config.drainGraceMs);
    if (!finished) {
      log.warn({ workerId: config.workerId, running: runner.running() }, "buffer_worker_drain_timeout");
      runner.abortAll("released");
      await runner.whenIdle(30_000);
    }
    if (outbox) {
      const flushed = await outbox.flush(forced ? 2_000 : 15_000);
      if (!flushed) log.warn({ pending: outbox.pendingIds() }, "outbox_not_flushed_kept_for_restart");
    }
    if (heartbeat) {
      await heartbeat.beatNow();
      await heartbeat.stop();
    }
    await monitor.stop();
    factsController.abort();
    if (factsTimer) clearTimeout(factsTimer);
    await outbox?.stop();
    await httpServer?.close();
    await client?.close();
    await downloadAgent.close();
    await storage.close();
    if ("close" in driver && typeof driver.close === "function") await (driver.close as () => Promise<void>)();
    log.info({ workerId: config.workerId }, "buffer_worker_stopped");
  }

  return {
    httpUrl: httpServer.url,
    workerId: config.workerId,
    drain() {
      drainPromise ??= drain();
      return drainPromise;
    },
    abortNow() {
      forced = true;
      log.warn({ workerId: config.workerId, running: runner.running() }, "buffer_worker_abort_requested");
      runner.abortAll("released");
      changes.notify();
    },
  };
}

async function readPackageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
