import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { startClaimLoop, type ClaimLoop } from "./claim-loop.js";
import { describeConfig, type Config } from "./config.js";
import { createShutdown } from "./drain.js";
import { startEngineMonitor, type EngineMonitor } from "./engine-monitor.js";
import { startHeartbeatLoop, type HeartbeatLoop } from "./heartbeat-loop.js";
import { startHttpServer, type WorkerHttpServer } from "./http-server.js";
import { startFactsTimer } from "./facts-timer.js";
import { createInferenceDriver } from "./inference/create-inference-driver.js";
import type { InferenceDriver } from "./inference/inference-driver.js";
import { createJobRunner, type JobRunner } from "./job-runner.js";
import type { Logger } from "./logger.js";
import { registerJobMetrics } from "./job-metrics.js";
import { Metrics } from "./metrics.js";
import { createOrchestratorClient, type OrchestratorClient } from "./orchestrator-client.js";
import { createOutbox, type Outbox } from "./outbox.js";
import { createDownloadAgent } from "./pipeline/download.js";
import { toJobInput, type JobInput } from "./pipeline/job-input.js";
import { runJob } from "./pipeline/run-job.js";
import { createProgressReporter } from "./progress-reporter.js";
import { logMediaTools, readPackageVersion } from "./startup-facts.js";
import { createStorage } from "./storage/create-storage.js";
import type { OutputStorage } from "./storage/output-storage.js";
import { WakeSignal } from "@fleet/runtime";
import { describeWorkerHealth, registerWorkerGauges, type WorkerStateSources } from "./worker-status.js";
import { wellFormed } from "./util/well-formed.js";
import { claimBlockedBy, generateRefusal, heartbeatStatus, initialFlags, planReply, reportedStatus, type WorkerSnapshot } from "./worker-state.js";

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
  await logMediaTools(config.mediaTools, log);
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

  const flags = initialFlags();
  const facts = startFactsTimer({ workDir: config.workDir });
  const gpuClass = () => config.gpuClass ?? facts.gpu()?.name ?? "unknown";

  const jobMetrics = registerJobMetrics(metrics, gpuClass);
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
    onOutcome: jobMetrics.observeOutcome,
  });

  const monitor: EngineMonitor = startEngineMonitor({
    driver,
    storage,
    intervalMs: Math.max(250, Math.min(config.heartbeatIntervalMs, 5_000)),
    log,
    busy: () => runner.running() > 0,
    onChange: () => changes.notify(),
  });

  let heartbeat: HeartbeatLoop | null = null;
  let claimLoop: ClaimLoop | null = null;

  const snapshot = (): WorkerSnapshot => {
    const running = runner.running();
    const hb = heartbeat?.snapshot();
    return {
      draining: flags.draining,
      drainRequested: flags.drainRequested,
      running,
      freeSlots: runner.freeSlots(),
      readiness: monitor.current(),
      readyToClaim: monitor.readyToClaim(running),
      heartbeatHealthy: hb?.healthy ?? false,
      fleetProtocol: hb?.protocol === "fleet",
    };
  };

  const stateSources: WorkerStateSources = {
    workerId: config.workerId,
    version,
    bufferLoop: buffer ? "running" : (config.bufferDisabledReason ?? "not_enabled"),
    driverName: driver.name,
    runner,
    outbox,
    monitor,
    heartbeat: () => heartbeat,
    draining: () => flags.draining || flags.drainRequested,
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
        generateRefusal(snapshot()) ?? runner.runDirect(toJobInput(req, { attemptId: `generate-${randomUUID()}`, bufferJobId: null, attempt: null }), signal),
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
        const now = snapshot();
        const reported = reportedStatus(now);
        // Engine details and errors are foreign text; keep them storable (see util/well-formed.ts).
        return wellFormed({
          status: heartbeatStatus(now, reported),
          gpu_class: gpuClass(),
          capacity: config.capacity,
          error: reported.error,
          active_jobs: runner.heldBufferJobIds().slice(0, 64),
          version,
          engine: now.readiness.engine,
          system: facts.system(),
        });
      },
      onReply: (reply) => {
        const plan = planReply(reply, flags.drainRequested);
        for (const { bufferJobId, reason } of plan.aborts) runner.abort(bufferJobId, reason);
        if (plan.drainRequested !== null) {
          flags.drainRequested = plan.drainRequested;
          log.info({ workerId: config.workerId }, plan.drainRequested ? "buffer_worker_drain_requested" : "buffer_worker_undrained");
          changes.notify();
        }
      },
      onHealthChange: (healthy) => {
        if (healthy) outbox.wake();
        changes.notify();
      },
      onBeat: jobMetrics.observeBeat,
    });
    claimLoop = startClaimLoop({
      client,
      workerId: buffer.workerId,
      waitMs: config.claimWaitMs,
      idlePollMs: config.heartbeatIntervalMs,
      timeoutMs: config.orchestratorTimeoutMs,
      log,
      changes,
      blockedBy: () => claimBlockedBy(snapshot()),
      onJob: (job) => runner.startClaimed(job),
      onUnrunnable: (job, problem) => runner.rejectUnrunnable(job, problem),
    });
  } else if (config.bufferDisabledReason === "missing_config") {
    log.warn({ workerId: config.workerId, missing: config.bufferMissing }, "buffer_worker_disabled_missing_config");
  } else {
    log.info({ hint: "set BUFFER_WORKER_ID (or WORKER_MODE=buffer) to join an orchestrator" }, "buffer_worker_not_enabled");
  }

  const shutdown = createShutdown({
    workerId: config.workerId,
    graceMs: config.drainGraceMs,
    log,
    flags,
    changes,
    runner,
    claimLoop,
    heartbeat,
    outbox,
    closeInOrder: [
      () => monitor.stop(),
      () => facts.stop(),
      () => outbox?.stop(),
      () => httpServer?.close(),
      () => client?.close(),
      () => downloadAgent.close(),
      () => storage.close(),
      () => driver.close(),
    ],
  });

  return {
    httpUrl: httpServer.url,
    workerId: config.workerId,
    drain: () => shutdown.drain(),
    abortNow: () => shutdown.abortNow(),
  };
}
