import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { WorkerId } from "@fleet/contract";
import { resolveMediaTools, type MediaTools } from "@fleet/media-tools";
import { describeEnvIssues, emptyAsUnset, envBoolean } from "@fleet/runtime";

const OptionalString = z.preprocess(emptyAsUnset, z.string().optional());
const OptionalUrl = z.preprocess(emptyAsUnset, z.url({ protocol: /^https?$/ }).optional());
const num = (schema: z.ZodNumber, fallback: number) => z.preprocess(emptyAsUnset, z.coerce.number().pipe(schema).default(fallback));

const EnvSchema = z.object({
  BUFFER_WORKER_ID: z.preprocess(emptyAsUnset, WorkerId.optional()),
  WORKER_MODE: OptionalString,
  BUFFER_ORCHESTRATOR_BASE_URL: OptionalUrl,
  ORCHESTRATOR_BASE_URL: OptionalUrl,
  INTERNAL_API_KEY: OptionalString,
  WORKER_TOKEN: OptionalString,
  GPU_CLASS: OptionalString,
  GPU_CLASS_NAME: OptionalString,
  BUFFER_CAPACITY: num(z.number().int().min(1).max(64), 1),
  // Fractions are allowed so tests can beat every 100 ms; production uses whole seconds.
  BUFFER_POLL_INTERVAL_SEC: num(z.number().min(0.05).max(300), 5),
  CLAIM_WAIT_MS: num(z.number().int().min(0).max(30_000), 20_000),
  ORCHESTRATOR_TIMEOUT_SEC: num(z.number().min(0.1).max(300), 10),
  B2_KEY_ID: OptionalString,
  B2_APP_KEY: OptionalString,
  B2_BUCKET_NAME: OptionalString,
  B2_PREFIX: z.preprocess(emptyAsUnset, z.string().default("avatar/outputs")),
  // backblaze-b2 speaks v2 only: it builds every other URL as {apiUrl}/b2api/v2/…, and a v3/v4
  // reply nests apiUrl where the library does not look.
  B2_AUTHORIZE_URL: z.preprocess(
    emptyAsUnset,
    z
      .url({ protocol: /^https?$/ })
      .refine((u) => new URL(u).pathname.replace(/\/+$/, "").endsWith("/b2api/v2/b2_authorize_account"), {
        message: "must be a v2 b2_authorize_account URL (…/b2api/v2/b2_authorize_account): the B2 library speaks v2 only",
      })
      .default("https://api.backblazeb2.com/b2api/v2/b2_authorize_account"),
  ),
  // B2 takes parts of 5 MB to 5 GB (decimal), the last one shorter; 100 MB is Backblaze's recommendation.
  // In MiB: 5 MiB ≥ 5 MB, and 4768 MiB is the largest whole number of MiB within 5 GB.
  B2_PART_SIZE_MB: num(z.number().min(5).max(4768), 100),
  B2_LARGE_FILE_THRESHOLD_MB: num(z.number().min(5).max(4768), 200),
  // Private buckets: lifetime of the authorized download links handed out as output_url. B2 allows 1 s to 7 days.
  B2_DOWNLOAD_URL_TTL_SEC: num(z.number().int().min(1).max(604_800), 86_400),
  // At start, cancel unfinished large files under B2_PREFIX started longer ago than this (0 = never).
  B2_CANCEL_UNFINISHED_AFTER_HOURS: num(z.number().min(0).max(8760), 24),
  CONFIG_LABEL: z.preprocess(emptyAsUnset, z.string().max(200).default("default")),
  BATCH_SIZE: num(z.number().int().min(1).max(64), 8),
  INFERENCE_DRIVER: z.preprocess(emptyAsUnset, z.enum(["ffmpeg", "http", "generate"]).default("ffmpeg")),
  INFERENCE_URL: OptionalUrl,
  INFERENCE_WORK_DIR: OptionalString,
  INFERENCE_TIMEOUT_SEC: num(z.number().min(1).max(86_400), 1800),
  INFERENCE_POLL_MS: num(z.number().int().min(20).max(60_000), 1000),
  STORAGE: z.preprocess(emptyAsUnset, z.enum(["local", "b2"]).default("local")),
  LOCAL_STORAGE_DIR: OptionalString,
  LOCAL_STORAGE_BASE_URL: OptionalUrl,
  WORK_DIR: OptionalString,
  HOST: z.preprocess(emptyAsUnset, z.string().default("0.0.0.0")),
  PORT: num(z.number().int().min(0).max(65_535), 8000),
  LOG_LEVEL: z.preprocess(
    emptyAsUnset,
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ),
  ALLOW_PRIVATE_NETWORK_URLS: envBoolean(false),
  MAX_INPUT_MB: num(z.number().min(1).max(100_000), 2048),
  MAX_INPUT_DURATION_SEC: num(z.number().min(1).max(86_400), 600),
  // Checked against ffprobe's facts before anything decodes a frame (lip-sync inputs are talking
  // heads: 4K a side, a few minutes, ordinary frame rates).
  MEDIA_MAX_SIDE_PX: num(z.number().int().min(16).max(65_536), 4096),
  MEDIA_MAX_PIXELS: num(z.number().int().min(256).max(1_000_000_000), 4096 * 2160),
  MEDIA_MAX_FPS: num(z.number().min(1).max(1000), 120),
  MEDIA_MAX_FRAMES: num(z.number().int().min(1).max(100_000_000), 36_000),
  // Kernel limits of every ffmpeg/ffprobe child (measured: a 4096x2160 still encodes in ~0.9 GB
  // resident with 2 threads; a 4000x4000 one fails to allocate under 2 GB).
  FFMPEG_MAX_MEMORY_MB: num(z.number().int().min(512).max(1_000_000), 2048),
  FFMPEG_MAX_CPU_SEC: num(z.number().int().min(1).max(1_000_000), 3600),
  FFMPEG_THREADS: num(z.number().int().min(1).max(64), 2),
  DOWNLOAD_TIMEOUT_SEC: num(z.number().min(1).max(86_400), 300),
  DOWNLOAD_CONNECT_TIMEOUT_SEC: num(z.number().min(0.1).max(300), 10),
  DOWNLOAD_ATTEMPTS: num(z.number().int().min(1).max(10), 3),
  FFPROBE_TIMEOUT_SEC: num(z.number().min(1).max(600), 30),
  DRAIN_GRACE_SEC: num(z.number().min(0).max(86_400), 60),
  GENERATE_API_KEY: OptionalString,
  WORKER_VERSION: OptionalString,
  // An explicit ffmpeg/ffprobe wins over the system's (PATH) and the npm-shipped static builds.
  FFMPEG_PATH: OptionalString,
  FFPROBE_PATH: OptionalString,
});

/** Every variable the worker reads; .env.example must list exactly these (a test checks). */
export const WORKER_ENV_NAMES = Object.keys(EnvSchema.shape);

export interface BufferSettings {
  workerId: string;
  orchestratorUrl: string;
  /** Null when the box has only its own WORKER_TOKEN. */
  internalApiKey: string | null;
}

export interface B2Settings {
  keyId: string;
  appKey: string;
  bucketName: string;
  prefix: string;
  authorizeUrl: string;
  partSizeBytes: number;
  largeFileThresholdBytes: number;
  /** Lifetime of the authorized download links of a private bucket. */
  downloadUrlTtlSec: number;
  /** Unfinished large files older than this are cancelled at start; null: never. */
  cancelUnfinishedAfterMs: number | null;
}

export interface Config {
  /** Null when the buffer loop is off; `bufferDisabledReason` says why. */
  buffer: BufferSettings | null;
  bufferDisabledReason: "not_enabled" | "missing_config" | null;
  /** Variables whose absence disabled the loop, named for the warning. */
  bufferMissing: string[];
  /** Identity used in logs and progress posts even when the buffer loop is off. */
  workerId: string;
  /** Orchestrator coordinates for best-effort progress of /generate calls (may exist without a worker id). */
  orchestratorUrl: string | null;
  internalApiKey: string | null;
  /** Per-worker token (`fleet workers enroll`); sent instead of the shared key when set. */
  workerToken: string | null;
  gpuClass: string | null;
  capacity: number;
  heartbeatIntervalMs: number;
  claimWaitMs: number;
  orchestratorTimeoutMs: number;
  storage: { kind: "local"; dir: string; baseUrl: string | null } | { kind: "b2"; b2: B2Settings };
  configLabel: string;
  batchSize: number;
  inference: {
    driver: "ffmpeg" | "http" | "generate";
    url: string | null;
    /** WORK_DIR as the inference container sees it (a shared volume may be mounted elsewhere). */
    workDirInEngine: string;
    timeoutMs: number;
    pollMs: number;
  };
  workDir: string;
  host: string;
  port: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  allowPrivateNetworkUrls: boolean;
  limits: {
    maxInputBytes: number;
    downloadTimeoutMs: number;
    downloadConnectTimeoutMs: number;
    downloadAttempts: number;
    ffprobeTimeoutMs: number;
    media: MediaLimits;
    ffmpeg: FfmpegBounds;
  };
  /** The ffmpeg/ffprobe binaries the CPU engine and media validation run. */
  mediaTools: MediaTools;
  drainGraceMs: number;
  generateApiKey: string | null;
  version: string | null;
}

/** What ffprobe's facts about an input must stay within. */
export interface MediaLimits {
  maxSidePx: number;
  maxPixels: number;
  maxFps: number;
  maxFrames: number;
  maxDurationSec: number;
}

/** Every ffmpeg/ffprobe child runs with these kernel limits and at most `threads` threads. */
export interface FfmpegBounds {
  memoryBytes: number;
  cpuSec: number;
  threads: number;
}

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
