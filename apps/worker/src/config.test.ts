import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ConfigError, WORKER_ENV_NAMES, describeConfig, loadConfig } from "./config.js";

const facts = { hostname: "gpu-box-2", tmpdir: "/tmp" };
const joined = { BUFFER_WORKER_ID: "buffer-orch-local-2", BUFFER_ORCHESTRATOR_BASE_URL: "https://203.0.113.10", INTERNAL_API_KEY: "k" };

describe("loadConfig", () => {
  it("uses the original's defaults when nothing is set, with the buffer loop off", () => {
    const c = loadConfig({}, facts);
    expect(c.buffer).toBeNull();
    expect(c.bufferDisabledReason).toBe("not_enabled");
    expect(c.capacity).toBe(1);
    expect(c.heartbeatIntervalMs).toBe(5000);
    expect(c.port).toBe(8000);
    expect(c.inference.driver).toBe("ffmpeg");
    expect(c.storage).toMatchObject({ kind: "local", dir: "/tmp/fleet-worker/outputs" });
    expect(c.allowPrivateNetworkUrls).toBe(false);
  });

  it("enables the buffer loop from the field note's docker run line", () => {
    const c = loadConfig(
      {
        BUFFER_WORKER_ID: "buffer-orch-local-2",
        BUFFER_ORCHESTRATOR_BASE_URL: "https://api.avatargen.online",
        ORCHESTRATOR_BASE_URL: "https://api.avatargen.online",
        GPU_CLASS_NAME: "RTX-local-buffer",
        BUFFER_CAPACITY: "1",
        BUFFER_POLL_INTERVAL_SEC: "5",
        INTERNAL_API_KEY: "secret",
      },
      facts,
    );
    expect(c.buffer).toEqual({ workerId: "buffer-orch-local-2", orchestratorUrl: "https://api.avatargen.online", internalApiKey: "secret" });
    expect(c.gpuClass).toBe("RTX-local-buffer");
  });

  it("prefers GPU_CLASS over the legacy GPU_CLASS_NAME", () => {
    expect(loadConfig({ GPU_CLASS: "RTX-3090", GPU_CLASS_NAME: "old" }, facts).gpuClass).toBe("RTX-3090");
  });

  it("falls back to ORCHESTRATOR_BASE_URL when BUFFER_ORCHESTRATOR_BASE_URL is unset, and drops a trailing slash", () => {
    const c = loadConfig({ BUFFER_WORKER_ID: "w", ORCHESTRATOR_BASE_URL: "https://203.0.113.11/", INTERNAL_API_KEY: "k" }, facts);
    expect(c.buffer?.orchestratorUrl).toBe("https://203.0.113.11");
  });

  it("derives buffer-<hostname> when WORKER_MODE=buffer and no id is given", () => {
    const c = loadConfig({ WORKER_MODE: "buffer", ORCHESTRATOR_BASE_URL: "http://o:8080", INTERNAL_API_KEY: "k" }, facts);
    expect(c.buffer?.workerId).toBe("buffer-gpu-box-2");
  });

  it("keeps the process up but disables the loop when the URL or key is missing, naming what is missing", () => {
    const c = loadConfig({ BUFFER_WORKER_ID: "w1" }, facts);
    expect(c.buffer).toBeNull();
    expect(c.bufferDisabledReason).toBe("missing_config");
    expect(c.bufferMissing).toEqual(["BUFFER_ORCHESTRATOR_BASE_URL (or ORCHESTRATOR_BASE_URL)", "INTERNAL_API_KEY"]);
  });

  it("treats empty strings like unset variables, as docker --env-file produces them", () => {
    const c = loadConfig({ ...joined, INTERNAL_API_KEY: "", GPU_CLASS: "" }, facts);
    expect(c.bufferMissing).toEqual(["INTERNAL_API_KEY"]);
    expect(c.gpuClass).toBeNull();
  });

  it("accepts fractional heartbeat periods so tests can beat fast", () => {
    expect(loadConfig({ BUFFER_POLL_INTERVAL_SEC: "0.2" }, facts).heartbeatIntervalMs).toBe(200);
  });

  it("names the variable when a number is wrong", () => {
    expect(() => loadConfig({ BUFFER_CAPACITY: "zero" }, facts)).toThrow(/BUFFER_CAPACITY/);
    expect(() => loadConfig({ BUFFER_CAPACITY: "0" }, facts)).toThrow(ConfigError);
  });

  it("requires the B2 credentials and bucket when STORAGE=b2, at start rather than per job", () => {
    expect(() => loadConfig({ STORAGE: "b2", B2_KEY_ID: "id" }, facts)).toThrow(/B2_APP_KEY.*B2_BUCKET_NAME/);
  });

  it("builds B2 settings with the original's prefix default and Backblaze's authorize URL", () => {
    const c = loadConfig({ STORAGE: "b2", B2_KEY_ID: "id", B2_APP_KEY: "app", B2_BUCKET_NAME: "talking-avatar" }, facts);
    expect(c.storage).toMatchObject({
      kind: "b2",
      b2: { prefix: "avatar/outputs", bucketName: "talking-avatar", authorizeUrl: "https://api.backblazeb2.com/b2api/v2/b2_authorize_account" },
    });
  });

  it("accepts only a v2 B2 authorize URL and part sizes within B2's 5 MB to 5 GB", () => {
    const b2 = { STORAGE: "b2", B2_KEY_ID: "id", B2_APP_KEY: "app", B2_BUCKET_NAME: "b" };
    expect(() => loadConfig({ ...b2, B2_AUTHORIZE_URL: "https://api.backblazeb2.com/b2api/v3/b2_authorize_account" }, facts)).toThrow(/B2_AUTHORIZE_URL.*v2/);
    expect(loadConfig({ ...b2, B2_AUTHORIZE_URL: "http://127.0.0.1:9/b2api/v2/b2_authorize_account" }, facts).storage).toMatchObject({ kind: "b2" });
    expect(() => loadConfig({ ...b2, B2_PART_SIZE_MB: "4769", B2_LARGE_FILE_THRESHOLD_MB: "4769" }, facts)).toThrow(/B2_PART_SIZE_MB/);
    expect(() => loadConfig({ ...b2, B2_PART_SIZE_MB: "4" }, facts)).toThrow(/B2_PART_SIZE_MB/);
    const c = loadConfig({ ...b2, B2_PART_SIZE_MB: "4768", B2_LARGE_FILE_THRESHOLD_MB: "4768" }, facts);
    expect(c.storage.kind === "b2" && c.storage.b2.partSizeBytes).toBeLessThanOrEqual(5_000_000_000);
  });

  it("bounds private-bucket link lifetimes by B2's 7 days and turns the unfinished-file clean-up off with 0", () => {
    const b2 = { STORAGE: "b2", B2_KEY_ID: "id", B2_APP_KEY: "app", B2_BUCKET_NAME: "b" };
    expect(loadConfig(b2, facts).storage).toMatchObject({ b2: { downloadUrlTtlSec: 86_400, cancelUnfinishedAfterMs: 24 * 3600_000 } });
    expect(() => loadConfig({ ...b2, B2_DOWNLOAD_URL_TTL_SEC: "604801" }, facts)).toThrow(/B2_DOWNLOAD_URL_TTL_SEC/);
    expect(loadConfig({ ...b2, B2_CANCEL_UNFINISHED_AFTER_HOURS: "0" }, facts).storage).toMatchObject({ b2: { cancelUnfinishedAfterMs: null } });
  });

  it("requires INFERENCE_URL for the http and generate drivers", () => {
    expect(() => loadConfig({ INFERENCE_DRIVER: "http" }, facts)).toThrow(/INFERENCE_URL/);
    expect(loadConfig({ INFERENCE_DRIVER: "generate", INFERENCE_URL: "http://127.0.0.1:8001/" }, facts).inference.url).toBe("http://127.0.0.1:8001");
  });

  it("refuses an unknown driver or a misspelt boolean instead of guessing", () => {
    expect(() => loadConfig({ INFERENCE_DRIVER: "musetalk" }, facts)).toThrow(/INFERENCE_DRIVER/);
    expect(() => loadConfig({ ALLOW_PRIVATE_NETWORK_URLS: "ture" }, facts)).toThrow(/ALLOW_PRIVATE_NETWORK_URLS/);
  });

  it("limits media to lip-sync sizes and bounds every ffmpeg child by default, each changeable", () => {
    expect(loadConfig({}, facts).limits).toMatchObject({
      media: { maxSidePx: 4096, maxPixels: 4096 * 2160, maxFps: 120, maxFrames: 36_000, maxDurationSec: 600 },
      ffmpeg: { memoryBytes: 2048 * 1024 * 1024, cpuSec: 3600, threads: 2 },
    });
    const custom = loadConfig({ MEDIA_MAX_SIDE_PX: "1920", MAX_INPUT_DURATION_SEC: "120", FFMPEG_MAX_MEMORY_MB: "4096", FFMPEG_THREADS: "4" }, facts).limits;
    expect(custom.media).toMatchObject({ maxSidePx: 1920, maxDurationSec: 120 });
    expect(custom.ffmpeg).toMatchObject({ memoryBytes: 4096 * 1024 * 1024, threads: 4 });
    // Below ~300 MB ffmpeg cannot even load its libraries: refuse it at start, not on every job.
    expect(() => loadConfig({ FFMPEG_MAX_MEMORY_MB: "128" }, facts)).toThrow(/FFMPEG_MAX_MEMORY_MB/);
  });

  it("never puts a secret in the printable summary", () => {
    const c = loadConfig({ ...joined, INTERNAL_API_KEY: "s3cret-key", STORAGE: "b2", B2_KEY_ID: "id", B2_APP_KEY: "app-s3cret", B2_BUCKET_NAME: "b" }, facts);
    const text = JSON.stringify(describeConfig(c));
    expect(text).not.toContain("s3cret");
  });

  it("is documented: .env.example lists every variable, each with a comment, and parses as is", async () => {
    const text = await readFile(new URL("../.env.example", import.meta.url), "utf8");
    const lines = text.split("\n");
    const names = lines.filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => l.split("=")[0]);
    expect([...names].sort()).toEqual([...WORKER_ENV_NAMES].sort());
    for (const name of names) {
      const i = lines.findIndex((l) => l.startsWith(`${name}=`));
      expect(lines[i - 1], `comment above ${name}`).toMatch(/^# /);
    }
    const env: Record<string, string> = Object.fromEntries(lines.filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const));
    expect(loadConfig(env, facts).inference.driver).toBe("ffmpeg");
  });
});
