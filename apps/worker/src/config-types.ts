import type { MediaTools } from "@fleet/media-tools";

/** The worker's settings as the rest of the worker reads them (loadConfig in config.ts builds it). */

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
