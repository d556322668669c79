import { z } from "zod";
import { WorkerId } from "@fleet/contract";
import { emptyAsUnset, envBoolean } from "@fleet/runtime";

/**
 * The worker's settings table: every variable it reads, its type, bounds and default. Reading,
 * cross-checks between variables and the shape the rest of the worker sees are config.ts's.
 */

const OptionalString = z.preprocess(emptyAsUnset, z.string().optional());
const OptionalUrl = z.preprocess(emptyAsUnset, z.url({ protocol: /^https?$/ }).optional());
const num = (schema: z.ZodNumber, fallback: number) => z.preprocess(emptyAsUnset, z.coerce.number().pipe(schema).default(fallback));

export const EnvSchema = z.object({
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
