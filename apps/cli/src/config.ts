import { existsSync, readFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { z } from "zod";
import { parseGpuBoxEnv, type GpuBoxLayout } from "./gpu-box/gpu-box-layout.js";

export const DEFAULT_FLEET_URL = "http://127.0.0.1:8080";

/** Where `./fleetw start` keeps its state; the CLI reads it when nothing else is configured. */
export const LOCAL_DATA_DIR = fileURLToPath(new URL("../../../.data/", import.meta.url));

/** FLEET_DATA_DIR follows a quick start launched with --data-dir elsewhere. */
export function localDataDirFrom(env: NodeJS.ProcessEnv): string {
  return nonEmpty(env.FLEET_DATA_DIR) ?? LOCAL_DATA_DIR;
}

export interface ConnectionFlags {
  url?: string | undefined;
  apiKey?: string | undefined;
  internalKey?: string | undefined;
}

export interface ConnectionConfig {
  url: string;
  apiKey: string | undefined;
  internalApiKey: string | undefined;
  /** Set when the settings came from the quick start's `.data/` files. */
  source: "flags-or-env" | "quick-start" | "default";
}

const DevKeys = z.object({ internal_api_key: z.string().min(1), public_api_key: z.string().min(1) });
const LocalFleetState = z.object({
  url: z.string(),
  pid: z.number().int(),
  workers: z
    .array(
      z.object({
        worker_id: z.string(),
        outputs_url: z.string(),
        outputs_dir: z.string(),
        work_dir: z.string().optional(),
        inference_driver: z.string().optional(),
        storage: z.string().optional(),
      }),
    )
    .default([]),
});

/** A worker on this machine with local storage: outputs under `url` are files under `dir`. */
export interface LocalOutputMapping {
  url: string;
  dir: string;
}

/** The quick start's workers store outputs locally; knowing where lets the CLI print the file path. */
export function loadLocalOutputMappings(localDataDir: string = LOCAL_DATA_DIR): LocalOutputMapping[] {
  const state = LocalFleetState.safeParse(readJson(join(localDataDir, "local-fleet.json")));
  if (!state.success) return [];
  return state.data.workers.map((w) => ({ url: w.outputs_url, dir: w.outputs_dir }));
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Flags win over env. When neither names a URL or a key, the operator is most likely trying the
 * quick start on this machine, so the keys `./fleetw start` generated (and the URL of a launcher
 * that is still running) are used: `./fleetw fleet workers` then works with nothing to export.
 */
export function loadConnectionConfig(
  env: NodeJS.ProcessEnv,
  flags: ConnectionFlags,
  localDataDir: string = LOCAL_DATA_DIR,
): ConnectionConfig {
  const url = nonEmpty(flags.url) ?? nonEmpty(env.FLEET_URL);
  const apiKey = nonEmpty(flags.apiKey) ?? nonEmpty(env.FLEET_API_KEY);
  const internalApiKey = nonEmpty(flags.internalKey) ?? nonEmpty(env.INTERNAL_API_KEY);
  if (url !== undefined || apiKey !== undefined || internalApiKey !== undefined) {
    return { url: url ?? DEFAULT_FLEET_URL, apiKey, internalApiKey, source: "flags-or-env" };
  }
  const keys = DevKeys.safeParse(readJson(join(localDataDir, "dev-keys.json")));
  if (!keys.success) return { url: DEFAULT_FLEET_URL, apiKey, internalApiKey, source: "default" };
  const state = LocalFleetState.safeParse(readJson(join(localDataDir, "local-fleet.json")));
  const localUrl = state.success && processAlive(state.data.pid) ? state.data.url : DEFAULT_FLEET_URL;
  return {
    url: localUrl,
    apiKey: keys.data.public_api_key,
    internalApiKey: keys.data.internal_api_key,
    source: "quick-start",
  };
}

/** What a worker box is configured with, read under the worker's own env names. */
export interface WorkerBoxConfig {
  orchestratorUrl: string | undefined;
  internalApiKey: string | undefined;
  /** The box's own credential (`fleet workers enroll`); the worker sends it instead of INTERNAL_API_KEY. */
  workerToken: string | undefined;
  workerId: string | undefined;
  inferenceDriver: string;
  inferenceUrl: string | undefined;
  storage: string;
  b2KeyId: string | undefined;
  b2AppKey: string | undefined;
  b2BucketName: string | undefined;
  b2AuthorizeUrl: string | undefined;
  /** B2_PREFIX; absent means the worker's default. */
  b2Prefix?: string | undefined;
  workDir: string;
  localStorageDir: string;
  /** FLEET_GPU_BOX: every GPU of a multi-GPU box (fleet gpu-box init writes it); null on a one-GPU box. */
  gpuBox: GpuBoxLayout | null;
  /** FFMPEG_PATH/FFPROBE_PATH and PATH: what the worker resolves its ffmpeg/ffprobe from. */
  ffmpegPath: string | undefined;
  ffprobePath: string | undefined;
  searchPath: string | undefined;
}

/**
 * The worker's defaults (apps/worker/src/config.ts), repeated so `fleet doctor` checks what the
 * worker would actually use. INFERENCE_URL has no default there (it is required for http and
 * generate); doctor reports it unset instead of guessing.
 */
export const WORKER_DEFAULTS = {
  inferenceDriver: "ffmpeg",
  storage: "local",
} as const;

/**
 * `fleet doctor` runs on a GPU box next to the worker's `.env`; `--env-file` reads that file so
 * the check sees what `docker run --env-file .env` gives the worker. The file wins over the shell.
 */
export function loadWorkerBoxConfig(env: NodeJS.ProcessEnv, envFile?: string): WorkerBoxConfig {
  let merged: NodeJS.ProcessEnv = env;
  if (envFile !== undefined) {
    if (!existsSync(envFile)) throw new Error(`--env-file ${envFile} does not exist`);
    merged = { ...env, ...parseEnv(readFileSync(envFile, "utf8")) };
  }
  const get = (name: string): string | undefined => nonEmpty(merged[name]);
  const workerMode = get("WORKER_MODE");
  const workerId = get("BUFFER_WORKER_ID") ?? (workerMode === "buffer" ? `buffer-${hostname()}` : undefined);
  const workDir = resolve(get("WORK_DIR") ?? join(tmpdir(), "fleet-worker"));
  return {
    orchestratorUrl: get("BUFFER_ORCHESTRATOR_BASE_URL") ?? get("ORCHESTRATOR_BASE_URL"),
    internalApiKey: get("INTERNAL_API_KEY"),
    workerToken: get("WORKER_TOKEN"),
    workerId,
    inferenceDriver: get("INFERENCE_DRIVER") ?? WORKER_DEFAULTS.inferenceDriver,
    inferenceUrl: get("INFERENCE_URL"),
    storage: get("STORAGE") ?? WORKER_DEFAULTS.storage,
    b2KeyId: get("B2_KEY_ID"),
    b2AppKey: get("B2_APP_KEY"),
    b2BucketName: get("B2_BUCKET_NAME"),
    b2AuthorizeUrl: get("B2_AUTHORIZE_URL"),
    b2Prefix: get("B2_PREFIX"),
    workDir,
    localStorageDir: resolve(get("LOCAL_STORAGE_DIR") ?? join(workDir, "outputs")),
    gpuBox: parseGpuBoxEnv(get("FLEET_GPU_BOX")),
    ffmpegPath: get("FFMPEG_PATH"),
    ffprobePath: get("FFPROBE_PATH"),
    searchPath: get("PATH"),
  };
}

/** The one place the CLI touches process.env; everything else receives the env it is given. */
export function readProcessEnv(): NodeJS.ProcessEnv {
  return process.env;
}

/** Names whose presence means "this shell describes a worker box": doctor then checks exactly that. */
const WORKER_BOX_NAMES = [
  "BUFFER_ORCHESTRATOR_BASE_URL",
  "ORCHESTRATOR_BASE_URL",
  "BUFFER_WORKER_ID",
  "WORKER_MODE",
  "INTERNAL_API_KEY",
  "WORKER_TOKEN",
  "INFERENCE_DRIVER",
  "INFERENCE_URL",
  "STORAGE",
  "B2_KEY_ID",
  "WORK_DIR",
];

export function describesWorkerBox(env: NodeJS.ProcessEnv): boolean {
  return WORKER_BOX_NAMES.some((name) => nonEmpty(env[name]) !== undefined);
}

/**
 * A quick start worker's settings, so `./fleetw fleet doctor` on a fresh clone checks the worker
 * that `./fleetw start` runs instead of failing on an empty environment. Null when no launcher runs.
 */
export function loadQuickStartWorkerBox(localDataDir: string, workerId?: string, searchPath?: string): WorkerBoxConfig | null {
  const keys = DevKeys.safeParse(readJson(join(localDataDir, "dev-keys.json")));
  const state = LocalFleetState.safeParse(readJson(join(localDataDir, "local-fleet.json")));
  if (!keys.success || !state.success || !processAlive(state.data.pid)) return null;
  const w = state.data.workers.find((x) => workerId === undefined || x.worker_id === workerId);
  if (w === undefined) return null;
  const workDir = w.work_dir ?? join(localDataDir, "worker");
  return {
    orchestratorUrl: state.data.url,
    internalApiKey: keys.data.internal_api_key,
    workerToken: undefined,
    workerId: w.worker_id,
    inferenceDriver: w.inference_driver ?? "ffmpeg",
    inferenceUrl: undefined,
    storage: w.storage ?? "local",
    b2KeyId: undefined,
    b2AppKey: undefined,
    b2BucketName: undefined,
    b2AuthorizeUrl: undefined,
    workDir,
    localStorageDir: w.outputs_dir,
    gpuBox: null,
    // The launcher's workers inherit its environment: the same PATH as this shell.
    ffmpegPath: undefined,
    ffprobePath: undefined,
    searchPath,
  };
}
