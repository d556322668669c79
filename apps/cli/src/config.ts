import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { loadConfig as loadWorkerConfig } from "@fleet/worker";
import { z } from "zod";
import { parseGpuBoxEnv, type GpuBoxLayout } from "./gpu-box/gpu-box-layout.js";

export const DEFAULT_FLEET_URL = "http://127.0.0.1:8080";

/** Where `./fleetw start` keeps its state; the CLI reads it when nothing else is configured. */
const LOCAL_DATA_DIR = fileURLToPath(new URL("../../../.data/", import.meta.url));

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
 * `fleet doctor` runs on a GPU box next to the worker's `.env`; `--env-file` reads that file so
 * the check sees what `docker run --env-file .env` gives the worker. The file wins over the shell.
 * The settings go through the worker's own `loadConfig`, so doctor checks the worker id, URL and
 * storage the worker would use; a setting the worker refuses throws its `ConfigError`.
 * `facts` stands in for the machine's hostname and temp dir in tests.
 */
export function loadWorkerBoxConfig(
  env: NodeJS.ProcessEnv,
  envFile?: string,
  facts?: { hostname: string; tmpdir: string },
): WorkerBoxConfig {
  let merged: NodeJS.ProcessEnv = env;
  if (envFile !== undefined) {
    if (!existsSync(envFile)) throw new Error(`--env-file ${envFile} does not exist`);
    merged = { ...env, ...parseEnv(readFileSync(envFile, "utf8")) };
  }
  const gpuBox = parseGpuBoxEnv(nonEmpty(merged.FLEET_GPU_BOX));
  const worker = loadWorkerConfig(merged, facts);
  const b2 = worker.storage.kind === "b2" ? worker.storage.b2 : null;
  return {
    orchestratorUrl: worker.orchestratorUrl ?? undefined,
    internalApiKey: worker.internalApiKey ?? undefined,
    workerToken: worker.workerToken ?? undefined,
    // Without BUFFER_WORKER_ID or WORKER_MODE=buffer the worker never heartbeats: no id to check.
    workerId: worker.bufferDisabledReason === "not_enabled" ? undefined : worker.workerId,
    inferenceDriver: worker.inference.driver,
    inferenceUrl: worker.inference.url ?? undefined,
    storage: worker.storage.kind,
    b2KeyId: b2?.keyId,
    b2AppKey: b2?.appKey,
    b2BucketName: b2?.bucketName,
    b2AuthorizeUrl: b2?.authorizeUrl,
    b2Prefix: b2?.prefix,
    workDir: worker.workDir,
    localStorageDir: worker.storage.kind === "local" ? worker.storage.dir : join(worker.workDir, "outputs"),
    gpuBox,
    ffmpegPath: nonEmpty(merged.FFMPEG_PATH),
    ffprobePath: nonEmpty(merged.FFPROBE_PATH),
    searchPath: nonEmpty(merged.PATH),
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
