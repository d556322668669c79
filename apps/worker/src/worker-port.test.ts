import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeTestAudio, makeTestVideo, runProcess, testMediaTools } from "@fleet/testing/media";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { captureLogger } from "./test-support/capture-logger.js";
import { startWorker, type Worker } from "./worker.js";

/**
 * The worker's own port as a stranger on the network sees it: a real worker, real HTTP, real
 * ffmpeg on hostile files made at test time.
 */

const KEY = "generate-key-for-tests";
const JOB_ID = "0b9d6a1e-5c3f-4e2a-9d8b-7f6e5d4c3b2a";
const OTHER_JOB_ID = "7c6b5a4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";

let media: string;
let files: FileServer;
let workDir: string;
const running: Array<{ worker: Worker; force: boolean }> = [];

beforeAll(async () => {
  media = await mkdtemp(path.join(tmpdir(), "fleet-port-media-"));
  const ffmpeg = async (args: string[]) => {
    const res = await runProcess(testMediaTools().ffmpeg.path, ["-hide_banner", "-loglevel", "error", "-y", ...args]);
    if (res.code !== 0) throw new Error(res.stderr);
  };
  await Promise.all([
    makeTestVideo(path.join(media, "avatar.mp4"), { seconds: 1 }),
    makeTestAudio(path.join(media, "voice.wav"), { seconds: 2 }),
    ffmpeg(["-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=15", "-c:v", "libx264", "-pix_fmt", "yuv420p", path.join(media, "box-secret.ts")]),
    // Within every ffprobe limit the test sets, but encoding it needs more than 2 GB of address space.
    ffmpeg(["-f", "lavfi", "-i", "testsrc=size=4000x4000:rate=1", "-frames:v", "1", path.join(media, "huge-still.png")]),
  ]);
  // A playlist whose only segment is a file of the worker's own disk, not of the caller's.
  await writeFile(
    path.join(media, "playlist.m3u8"),
    `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\nfile://${path.join(media, "box-secret.ts")}\n#EXT-X-ENDLIST\n${"#".repeat(1200)}\n`,
  );
  files = await startFileServer(media);
});
afterEach(async () => {
  for (const { worker, force } of running.splice(0)) {
    if (force) worker.abortNow();
    await worker.drain();
  }
  await rm(workDir, { recursive: true, force: true });
});
afterAll(async () => {
  await files.close();
  await rm(media, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}, opts: { force?: boolean } = {}) {
  if (!env.WORK_DIR) workDir = await mkdtemp(path.join(tmpdir(), "fleet-port-"));
  const logs = captureLogger();
  const config = loadConfig({ HOST: "127.0.0.1", PORT: "0", WORK_DIR: workDir, ALLOW_PRIVATE_NETWORK_URLS: "true", GENERATE_API_KEY: KEY, ...env });
  const worker = await startWorker(config, logs.log);
  running.push({ worker, force: opts.force ?? false });
  return { worker, logs };
}

function generate(worker: Worker, body: Record<string, unknown>, init: { key?: string | null; signal?: AbortSignal } = {}) {
  const key = init.key === undefined ? KEY : init.key;
  return fetch(`${worker.httpUrl}/generate`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
    body: JSON.stringify(body),
    signal: init.signal,
  });
}

const body = (overrides: Record<string, unknown> = {}) => ({
  musetalk_job_id: JOB_ID,
  video_url: files.urlFor("/avatar.mp4"),
  audio_url: files.urlFor("/voice.wav"),
  aspect_ratio: "9:16",
  resolution: "720p",
  ...overrides,
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("the worker's port: POST /generate", () => {
  it("does not exist without GENERATE_API_KEY (404), and the worker says so at start", async () => {
    const { worker, logs } = await start({ GENERATE_API_KEY: "" });
    const res = await generate(worker, body(), { key: null });
    expect(res.status).toBe(404);
    await res.body?.cancel();
    expect(logs.messages("worker_generate_disabled")).toHaveLength(1);
    expect(files.requestCount("/avatar.mp4")).toBe(0);
  });

  it("answers 401 to a wrong key", async () => {
    const { worker } = await start();
    const res = await generate(worker, body(), { key: "wrong" });
    expect(res.status).toBe(401);
    await res.body?.cancel();
  });

  it("answers 422 to job ids that are not UUIDs before any work, and writes no file", async () => {
    const { worker } = await start();
    const before = files.requestCount();
    for (const id of [`${OTHER_JOB_ID}.mp4/../${OTHER_JOB_ID}`, "../../x", "..", "x/../../../etc/cron.d/x", `${JOB_ID}\u0000`, "job-123"]) {
      const res = await generate(worker, body({ musetalk_job_id: id }));
      expect(res.status, id).toBe(422);
      const detail = ((await res.json()) as { detail: Array<{ loc: string[] }> }).detail;
      expect(detail.map((d) => d.loc.at(-1))).toContain("musetalk_job_id");
    }
    expect(files.requestCount() - before).toBe(0);
    expect(await filesUnder(workDir)).toEqual([]);
  });

  it("answers 429 with Retry-After when claimed and direct jobs fill BUFFER_CAPACITY", async () => {
    const { worker } = await start({ BUFFER_CAPACITY: "1" }, { force: true });
    files.fault("/avatar.mp4", { kind: "throttle", bytesPerSec: 2_000 });
    const holder = new AbortController();
    const first = generate(worker, body(), { signal: holder.signal }).catch(() => null);
    await expect.poll(() => files.requestCount("/avatar.mp4"), { timeout: 20_000 }).toBeGreaterThan(0);
    const res = await generate(worker, body({ musetalk_job_id: OTHER_JOB_ID }));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    await res.body?.cancel();
    holder.abort();
    await first;
    files.clearFaults("/avatar.mp4");
  });

  it("answers an input host that fails with 422 download_error, the job's fault, never 500", async () => {
    const { worker } = await start({ DOWNLOAD_ATTEMPTS: "1" });
    files.fault("/voice.wav", { kind: "status", status: 503 });
    const res = await generate(worker, body());
    files.clearFaults("/voice.wav");
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ status: "failed", error_type: "download_error", stage: "download", fault: "job", retryable: true });
  });

  it("times out a request body that never finishes", async () => {
    const { worker } = await start();
    const url = new URL(worker.httpUrl);
    const socket = net.connect(Number(url.port), url.hostname);
    const answer = new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
      socket.on("close", () => resolve(text));
      socket.on("error", () => resolve(text));
    });
    socket.write(`POST /generate HTTP/1.1\r\nHost: worker\r\nX-API-Key: ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"musetalk_job_id":`);
    const started = Date.now();
    const text = await Promise.race([answer, new Promise<string>((resolve) => setTimeout(() => resolve("(no answer)"), 30_000))]);
    socket.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(25_000);
  }, 40_000);
});

describe("the worker's port: other routes", () => {
  it("answers GET /outputs/ with malformed percent-encoding with 400, not 500", async () => {
    const { worker } = await start();
    for (const p of ["/outputs/%E0%A4%A", "/outputs/%", "/outputs/avatar/%zz.mp4"]) {
      const res = await fetch(`${worker.httpUrl}${p}`);
      expect(res.status, p).toBe(400);
      await res.body?.cancel();
    }
  });

  it("shows the fencing tokens it holds on /healthz only to a caller with the generate key, and never on /metrics", async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "fleet-port-"));
    const bufferJobId = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
    // A terminal report the orchestrator has not acknowledged yet: the worker still holds its attempt.
    await mkdir(path.join(workDir, "outbox"), { recursive: true });
    await writeFile(
      path.join(workDir, "outbox", `${bufferJobId}.json`),
      JSON.stringify({
        buffer_job_id: bufferJobId,
        musetalk_job_id: JOB_ID,
        worker_id: "port-test",
        written_at: new Date().toISOString(),
        report: { status: "failed", error: "x", output_url: null, metrics: null, error_info: null },
      }),
    );
    const { worker } = await start(
      { WORK_DIR: workDir, BUFFER_WORKER_ID: "port-test", BUFFER_ORCHESTRATOR_BASE_URL: `http://127.0.0.1:${await closedPort()}`, INTERNAL_API_KEY: "internal" },
      { force: true },
    );
    const anonymous = await (await fetch(`${worker.httpUrl}/healthz`)).text();
    expect(anonymous).not.toContain(bufferJobId);
    expect(JSON.parse(anonymous)).toMatchObject({ jobs: { held_count: 1 } });
    const wrongKey = await (await fetch(`${worker.httpUrl}/healthz`, { headers: { "x-api-key": "wrong" } })).text();
    expect(wrongKey).not.toContain(bufferJobId);
    const withKey = (await (await fetch(`${worker.httpUrl}/healthz`, { headers: { "x-api-key": KEY } })).json()) as { jobs: { held: string[] } };
    expect(withKey.jobs.held).toEqual([bufferJobId]);
    expect(await (await fetch(`${worker.httpUrl}/metrics`)).text()).not.toContain(bufferJobId);
  });
});

describe("the worker's port: hostile media", () => {
  it("refuses an HLS playlist as the video with 422 media_error within seconds, and nothing of the box's file is output", async () => {
    const { worker } = await start();
    const started = Date.now();
    const res = await generate(worker, body({ video_url: files.urlFor("/playlist.m3u8") }));
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error_type: "media_error", stage: "validation", fault: "job" });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await filesUnder(path.join(workDir, "outputs"))).toEqual([]);
  });

  it("stops an input that passes ffprobe's limits but needs more memory than the bound, as a 422 media_error", async () => {
    // The limits are opened up on purpose so only the kernel bound stands between this file and the box.
    const { worker } = await start({ MEDIA_MAX_PIXELS: "20000000", FFMPEG_MAX_MEMORY_MB: "768" });
    const started = Date.now();
    const res = await generate(worker, body({ video_url: files.urlFor("/huge-still.png") }));
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error_type: "media_error", stage: "inference", fault: "job", details: { max_memory_mb: 768 } });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await filesUnder(path.join(workDir, "outputs"))).toEqual([]);
  }, 60_000);
});
