// Memory benchmark (not a test): uploads a 1 GiB output through the B2 test server with the
// worker's real B2 storage, in a child process of its own, and prints that process's peak RSS.
// The B2 test server runs here, in the parent, so its buffers never count against the worker.
//
//   fw pnpm -C apps/worker build && fw pnpm -C packages/testing build
//   fw node apps/worker/bench/upload-memory.mjs [sizeMiB=1024] [partSizeMiB=100] [workerNodeOptions]
//
// workerNodeOptions goes to both uploading processes as NODE_OPTIONS, e.g.
// "--max-semi-space-size=1" (a smaller young generation: less garbage between collections).
//
// Then the same through the whole built worker: POST /generate on its own port, an engine on
// Fleet's http contract that "renders" a 1 GiB mp4, and the worker's pipeline (download, ffprobe,
// upload in parts to the B2 test server); the worker's peak RSS is read from /proc (VmHWM).
/* global process, console, setTimeout, fetch */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { appendFile, copyFile, open, mkdtemp, rm, readFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startB2TestServer } from "@fleet/testing/b2-test-server";
import { startFileServer } from "@fleet/testing/file-server";
import { makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { startWorkerProcess } from "@fleet/testing/worker-process";

const here = path.dirname(fileURLToPath(import.meta.url));
const sizeMiB = Number(process.argv[2] ?? 1024);
const partMiB = Number(process.argv[3] ?? 100);
const nodeOptions = process.argv[4] ? { NODE_OPTIONS: process.argv[4] } : {};
const MiB = 1024 * 1024;

const dir = await mkdtemp(path.join(tmpdir(), "fleet-bench-upload-"));
const file = path.join(dir, "output.mp4");
const b2 = await startB2TestServer({ tmpRoot: dir });
try {
  // A 1 MiB random block repeated: realistic bytes for SHA-1, cheap to write.
  const block = randomBytes(MiB);
  const fh = await open(file, "w");
  for (let i = 0; i < sizeMiB; i++) await fh.write(block);
  await fh.close();

  const result = await runChild(path.join(here, "upload-child.mjs"), [file, String(partMiB)], { ...b2.env(), ...nodeOptions });
  const parts = b2.requestCount("upload_part");
  const key = `bench/${path.basename(file)}`;
  const stored = b2.listObjects().find((o) => o.fileName === key);
  const sha1 = await sha1OfFile(file);
  const idle = await idleWorkerRss();
  const whole = await wholeWorker(dir, b2, sizeMiB, partMiB);

  console.log(JSON.stringify({
    bytes: sizeMiB * MiB,
    partSizeMiB: partMiB,
    parts,
    workerNodeOptions: nodeOptions.NODE_OPTIONS ?? null,
    stored: stored?.size === sizeMiB * MiB,
    sha1Matches: sha1 === (await sha1OfFile(b2.objectPath(key))),
    uploadSeconds: result.seconds,
    uploaderPeakRssMiB: result.peakRssMiB,
    workerIdleRssMiB: idle,
    wholeWorker: whole,
    node: process.version,
  }, null, 2));
} finally {
  await b2.close();
  await rm(dir, { recursive: true, force: true });
}

function runChild(script, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1))) : reject(new Error(`child exited ${code}: ${out}`))));
  });
}

async function sha1OfFile(p) {
  const hash = createHash("sha1");
  const fh = await open(p, "r");
  for await (const chunk of fh.createReadStream()) hash.update(chunk);
  return hash.digest("hex");
}

/** A 1 GiB "output": a real faststart mp4 (ffprobe reads its header) padded to size. */
async function makeBigOutput(dir, sizeMiB) {
  const big = path.join(dir, "engine-output.mp4");
  await makeTestVideo(big, { seconds: 2, withAudio: true });
  const block = randomBytes(MiB);
  for (let i = 0; i < sizeMiB; i++) await appendFile(big, block);
  return big;
}

/** An inference engine on Fleet's http contract whose every prediction copies `big` to output_path. */
async function startCopyEngine(big) {
  const predictions = new Map();
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", async () => {
      const send = (status, value) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (req.url === "/health-check") return send(200, { status: "READY", engine: "bench-copy", lip_sync: false });
      const m = /^\/predictions\/([^/]+)$/.exec(req.url ?? "");
      if (m && req.method === "PUT") {
        const { input } = JSON.parse(body);
        await copyFile(big, input.output_path);
        predictions.set(m[1], { id: m[1], status: "succeeded", progress: 1, output: { video_path: input.output_path } });
        return send(200, predictions.get(m[1]));
      }
      if (m && req.method === "GET") return send(200, predictions.get(m[1]));
      send(404, {});
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

async function wholeWorker(dir, b2, sizeMiB, partMiB) {
  const media = path.join(dir, "media");
  await rm(media, { recursive: true, force: true });
  await import("node:fs/promises").then((fs) => fs.mkdir(media, { recursive: true }));
  await Promise.all([makeTestVideo(path.join(media, "avatar.mp4")), makeTestAudio(path.join(media, "voice.wav"))]);
  const files = await startFileServer(media);
  const engine = await startCopyEngine(await makeBigOutput(dir, sizeMiB));
  const w = await startWorkerProcess({
    env: {
      LOG_LEVEL: "info", INFERENCE_DRIVER: "http", INFERENCE_URL: engine.url, INFERENCE_POLL_MS: "100",
      STORAGE: "b2", B2_PREFIX: "bench-worker", B2_PART_SIZE_MB: String(partMiB), B2_LARGE_FILE_THRESHOLD_MB: String(partMiB), ...b2.env(),
      ...nodeOptions,
    },
  });
  try {
    await w.waitForLog("storage_ready");
    const started = Date.now();
    const res = await fetch(`${w.url}/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ musetalk_job_id: "bench-1gib", video_url: files.urlFor("/avatar.mp4"), audio_url: files.urlFor("/voice.wav"), aspect_ratio: "1:1", resolution: "512x512" }),
    });
    const answer = await res.json();
    const status = await readFile(`/proc/${w.pid}/status`, "utf8");
    const stored = b2.listObjects().find((o) => o.fileName === "bench-worker/bench-1gib.mp4");
    return {
      httpStatus: res.status,
      outputBytes: stored?.size ?? null,
      seconds: (Date.now() - started) / 1000,
      peakRssMiB: Math.round((Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024) * 10) / 10,
      outputUrl: answer.output_url ?? null,
    };
  } finally {
    await w.stop();
    await engine.close();
    await files.close();
  }
}

async function idleWorkerRss() {
  const w = await startWorkerProcess({ env: { LOG_LEVEL: "info" } });
  try {
    await new Promise((r) => setTimeout(r, 3000));
    const status = await readFile(`/proc/${w.pid}/status`, "utf8");
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return Math.round((kb / 1024) * 10) / 10;
  } finally {
    await w.stop();
  }
}
