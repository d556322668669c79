import os from "node:os";
import path from "node:path";
import { resolveMediaTools } from "@fleet/media-tools";
import { describeEnvIssues } from "@fleet/runtime";
import { EnvSchema, WORKER_ENV_NAMES } from "./config-env.js";
import type { Config } from "./config-types.js";

export { WORKER_ENV_NAMES };
export type { B2Settings, Config, FfmpegBounds, MediaLimits } from "./config-types.js";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const MB = 1024 * 1024;

/**
 * Reads the worker's settings once, at start. Names are the original's (decision 0003 in docs/decisions), legacy
 * aliases included, so an existing `.env` keeps working. Throws a ConfigError naming every
 * variable that is wrong.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  facts: { hostname: string; tmpdir: string } = { hostname: os.hostname(), tmpdir: os.tmpdir() },
): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = describeEnvIssues(parsed.error.issues, env);
    throw new ConfigError(`invalid worker configuration: ${problems.join("; ")}`);
  }
  const e = parsed.data;
  const problems: string[] = [];

  const orchestratorUrl = (e.BUFFER_ORCHESTRATOR_BASE_URL ?? e.ORCHESTRATOR_BASE_URL ?? null)?.replace(/\/+$/, "") ?? null;
  const internalApiKey = e.INTERNAL_API_KEY ?? null;
  const workerToken = e.WORKER_TOKEN ?? null;
  const enabledId = e.BUFFER_WORKER_ID ?? (e.WORKER_MODE?.toLowerCase() === "buffer" ? bufferIdFor(facts.hostname) : null);
  const bufferMissing: string[] = [];
  if (enabledId) {
    if (!orchestratorUrl) bufferMissing.push("BUFFER_ORCHESTRATOR_BASE_URL (or ORCHESTRATOR_BASE_URL)");
    if (!internalApiKey && !workerToken) bufferMissing.push("INTERNAL_API_KEY");
  }
  const buffer =
    enabledId && orchestratorUrl && (internalApiKey || workerToken) ? { workerId: enabledId, orchestratorUrl, internalApiKey } : null;

  const workDir = path.resolve(e.WORK_DIR ?? path.join(facts.tmpdir, "fleet-worker"));

  if (e.INFERENCE_DRIVER !== "ffmpeg" && !e.INFERENCE_URL) {
    problems.push(`INFERENCE_URL: required when INFERENCE_DRIVER=${e.INFERENCE_DRIVER}`);
  }
  let storage: Config["storage"];
  if (e.STORAGE === "b2") {
    for (const name of ["B2_KEY_ID", "B2_APP_KEY", "B2_BUCKET_NAME"] as const) {
      if (!e[name]) problems.push(`${name}: required when STORAGE=b2`);
    }
    if (e.B2_LARGE_FILE_THRESHOLD_MB < e.B2_PART_SIZE_MB) {
      problems.push("B2_LARGE_FILE_THRESHOLD_MB: must be at least B2_PART_SIZE_MB");
    }
    storage = {
      kind: "b2",
      b2: {
        keyId: e.B2_KEY_ID ?? "",
        appKey: e.B2_APP_KEY ?? "",
        bucketName: e.B2_BUCKET_NAME ?? "",
        prefix: e.B2_PREFIX.replace(/^\/+|\/+$/g, ""),
        authorizeUrl: e.B2_AUTHORIZE_URL,
        partSizeBytes: Math.floor(e.B2_PART_SIZE_MB * MB),
        largeFileThresholdBytes: Math.floor(e.B2_LARGE_FILE_THRESHOLD_MB * MB),
        downloadUrlTtlSec: e.B2_DOWNLOAD_URL_TTL_SEC,
        cancelUnfinishedAfterMs: e.B2_CANCEL_UNFINISHED_AFTER_HOURS > 0 ? Math.round(e.B2_CANCEL_UNFINISHED_AFTER_HOURS * 3600_000) : null,
      },
    };
  } else {
    storage = {
      kind: "local",
      dir: path.resolve(e.LOCAL_STORAGE_DIR ?? path.join(workDir, "outputs")),
      baseUrl: e.LOCAL_STORAGE_BASE_URL?.replace(/\/+$/, "") ?? null,
    };
  }
  if (problems.length > 0) throw new ConfigError(`invalid worker configuration: ${problems.join("; ")}`);

  return {
    buffer,
    bufferDisabledReason: buffer ? null : enabledId ? "missing_config" : "not_enabled",
    bufferMissing,
    workerId: enabledId ?? facts.hostname,
    orchestratorUrl,
    internalApiKey,
    workerToken,
    gpuClass: e.GPU_CLASS ?? e.GPU_CLASS_NAME ?? null,
    capacity: e.BUFFER_CAPACITY,
    heartbeatIntervalMs: Math.round(e.BUFFER_POLL_INTERVAL_SEC * 1000),
    claimWaitMs: e.CLAIM_WAIT_MS,
    orchestratorTimeoutMs: Math.round(e.ORCHESTRATOR_TIMEOUT_SEC * 1000),
    storage,
    configLabel: e.CONFIG_LABEL,
    batchSize: e.BATCH_SIZE,
    inference: {
      driver: e.INFERENCE_DRIVER,
      url: e.INFERENCE_URL?.replace(/\/+$/, "") ?? null,
      workDirInEngine: e.INFERENCE_WORK_DIR ?? workDir,
      timeoutMs: Math.round(e.INFERENCE_TIMEOUT_SEC * 1000),
      pollMs: e.INFERENCE_POLL_MS,
    },
    workDir,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    allowPrivateNetworkUrls: e.ALLOW_PRIVATE_NETWORK_URLS,
    limits: {
      maxInputBytes: Math.floor(e.MAX_INPUT_MB * MB),
      downloadTimeoutMs: Math.round(e.DOWNLOAD_TIMEOUT_SEC * 1000),
      downloadConnectTimeoutMs: Math.round(e.DOWNLOAD_CONNECT_TIMEOUT_SEC * 1000),
      downloadAttempts: e.DOWNLOAD_ATTEMPTS,
      ffprobeTimeoutMs: Math.round(e.FFPROBE_TIMEOUT_SEC * 1000),
      media: {
        maxSidePx: e.MEDIA_MAX_SIDE_PX,
        maxPixels: e.MEDIA_MAX_PIXELS,
        maxFps: e.MEDIA_MAX_FPS,
        maxFrames: e.MEDIA_MAX_FRAMES,
        maxDurationSec: e.MAX_INPUT_DURATION_SEC,
      },
      ffmpeg: { memoryBytes: e.FFMPEG_MAX_MEMORY_MB * MB, cpuSec: e.FFMPEG_MAX_CPU_SEC, threads: e.FFMPEG_THREADS },
    },
    mediaTools: resolveMediaTools({ FFMPEG_PATH: e.FFMPEG_PATH, FFPROBE_PATH: e.FFPROBE_PATH, PATH: env.PATH }),
    drainGraceMs: Math.round(e.DRAIN_GRACE_SEC * 1000),
    generateApiKey: e.GENERATE_API_KEY ?? null,
    version: e.WORKER_VERSION ?? null,
  };
}

/** main.ts's entry: the one place the worker reads process.env. */
export function loadConfigFromProcess(): Config {
  return loadConfig(process.env);
}

/** The original's fallback identity when WORKER_MODE=buffer and no id is given. */
function bufferIdFor(hostname: string): string {
  return `buffer-${hostname.replace(/[^A-Za-z0-9._:@-]/g, "-")}`.slice(0, 128);
}

/** What is safe to print at start: everything except the secrets. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    workerId: config.workerId,
    bufferLoop: config.buffer ? "enabled" : config.bufferDisabledReason,
    orchestratorUrl: config.orchestratorUrl,
    internalApiKeySet: config.internalApiKey !== null,
    workerTokenSet: config.workerToken !== null,
    gpuClass: config.gpuClass,
    capacity: config.capacity,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    inferenceDriver: config.inference.driver,
    inferenceUrl: config.inference.url,
    storage:
      config.storage.kind === "b2"
        ? { kind: "b2", bucket: config.storage.b2.bucketName, prefix: config.storage.b2.prefix }
        : { kind: "local", dir: config.storage.dir },
    workDir: config.workDir,
    port: config.port,
    allowPrivateNetworkUrls: config.allowPrivateNetworkUrls,
  };
}
