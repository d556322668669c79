// Starts the deploy bundles the way the images run them and proves a GPU box works end to end:
// orchestrator + worker (node dist/main.js from each bundle directory, never from the repo) +
// the inference server (docker/inference/server.py, fake engine: no GPU here), each with the
// environment the compose files give it (docker/*.env), on a fresh PostgreSQL database.
// Then: health checks, the worker's heartbeat accepted (online in /internal/buffer/workers), one
// job through the http driver and B2 upload. Then a two-GPU box as `fleet gpu-box init` writes
// it (the worker bundle's own CLI): two engines and two workers with the generated ids, ports and
// work subdirectories, both heartbeating, each taking a job; `fleet doctor` from the worker
// bundle with only that worker's environment passes, and names the GPU whose engine is stopped;
// `fleet workers` from the orchestrator bundle groups them by box. Last, a clean SIGTERM stop.
//
//   node scripts/check-bundles-run.mjs <bundles-dir>      (scripts/check-bundles.sh runs it)
//
// What differs from a container, and why (printed as it starts): ports are free ones and paths are
// temp dirs (a shared CI machine), DATABASE_URL is a fresh database, B2 is the test server from
// @fleet/testing, the engine is the fake one, and ALLOW_PRIVATE_NETWORK_URLS=true lets the job's
// inputs come from 127.0.0.1.
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bundles = path.resolve(process.argv[2] ?? "");
const WAIT_MS = 90_000;
const testing = (name) => import(path.join(root, "packages/testing/dist", `${name}.js`));
// pg is a dependency of @fleet/testing, not of the repository root.
const pg = createRequire(path.join(root, "packages/testing/package.json"))("pg");

const say = (msg) => console.log(`check-bundles: ${msg}`);
class CheckFailed extends Error {}
const fail = (msg) => {
  throw new CheckFailed(msg);
};

/** KEY=VALUE lines, # comments: the format compose's env_file reads. */
export function readEnvFile(file) {
  const env = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith("#")) continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) fail(`${file}: not KEY=VALUE: ${trimmed}`);
    env[trimmed.slice(0, eq).trim()] = trimmed.slice(eq + 1).trim();
  }
  return env;
}

/** The wiring the compose files, env files and Dockerfiles must agree on. */
function checkTopology(env) {
  const read = (f) => readFileSync(path.join(root, f), "utf8");
  const gpu = read("docker/compose.gpu.yaml");
  const vps = read("docker/compose.vps.yaml");
  const problems = [];
  const inferenceUrl = new URL(env.worker.INFERENCE_URL ?? "http://missing");
  if (inferenceUrl.port !== env.inference.INFERENCE_PORT) {
    problems.push(`worker.env INFERENCE_URL port ${inferenceUrl.port} != inference.env INFERENCE_PORT ${env.inference.INFERENCE_PORT}`);
  }
  if (!["127.0.0.1", "localhost"].includes(inferenceUrl.hostname)) {
    problems.push(`worker.env INFERENCE_URL must be on loopback under network_mode: host, got ${inferenceUrl.hostname}`);
  }
  if (env.worker.INFERENCE_DRIVER !== "http") problems.push("worker.env INFERENCE_DRIVER must be http");
  const workDirs = new Set([env.worker.WORK_DIR, env.worker.INFERENCE_WORK_DIR, env.inference.INFERENCE_WORK_ROOT]);
  if (workDirs.size !== 1) problems.push(`WORK_DIR, INFERENCE_WORK_DIR and INFERENCE_WORK_ROOT differ: ${[...workDirs].join(", ")}`);
  const mounts = gpu.split(`- work:${env.worker.WORK_DIR}\n`).length - 1;
  if (mounts !== 2) problems.push(`compose.gpu.yaml must mount the work volume at ${env.worker.WORK_DIR} in both services (found ${mounts})`);
  for (const [file, text, needles] of [
    ["compose.gpu.yaml", gpu, ["- worker.env", "- inference.env", "network_mode: host", "shm_size: 8g", "condition: service_healthy", "driver: nvidia"]],
    ["compose.vps.yaml", vps, ["- orchestrator.env", "condition: service_healthy", "pg_isready"]],
  ]) {
    for (const needle of needles) if (!text.includes(needle)) problems.push(`${file} lacks "${needle}"`);
  }
  const nodeVersion = /NODE_VERSION="([^"]+)"/.exec(read("fleetw"))?.[1];
  for (const app of ["orchestrator", "worker"]) {
    const dockerfile = read(`docker/${app}.Dockerfile`);
    if (!dockerfile.includes(`bash scripts/build-bundle.sh ${app} /out`)) problems.push(`docker/${app}.Dockerfile does not build with scripts/build-bundle.sh`);
    if (!dockerfile.includes(`node:${nodeVersion}-bookworm-slim`)) problems.push(`docker/${app}.Dockerfile is not on node:${nodeVersion} (fleetw's NODE_VERSION)`);
    const port = env[app].PORT;
    if (!dockerfile.includes(`PORT=${port}`)) problems.push(`docker/${app}.Dockerfile's PORT differs from docker/${app}.env (${port})`);
  }
  if (problems.length > 0) fail(`deploy files disagree:\n  ${problems.join("\n  ")}`);
  say("compose files, env files and Dockerfiles agree (ports, work volume, build script, node version)");
}

/** A base port with `count` free ports from it (the generator puts GPU n on base + n). */
async function freePortRun(count) {
  for (let tries = 0; tries < 50; tries++) {
    const base = await freePort();
    if (base + count > 65_535) continue;
    let free = true;
    for (let i = 1; i < count && free; i++) free = await portFree(base + i);
    if (free) return base;
  }
  fail(`no run of ${count} free ports found`);
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Runs a bundle's bin/fleet with exactly `env` (PATH added for node), as `docker compose exec` would. */
function runFleet(bundle, args, env) {
  return new Promise((resolve) => {
    execFile(path.join(bundle, "bin/fleet"), args, { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function freePort() {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const procs = [];

/** A child with a clean environment (PATH/HOME/TMPDIR only), as in a container. */
function start(name, cmd, args, { cwd, env }) {
  const base = { PATH: process.env.PATH, HOME: process.env.HOME ?? "/tmp", TMPDIR: process.env.TMPDIR ?? "/tmp", LANG: "C.UTF-8" };
  const child = spawn(cmd, args, { cwd, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const entry = { name, child, lines: [], exit: null };
  const keep = (chunk) => {
    for (const line of chunk.toString().split("\n")) {
      if (!line) continue;
      entry.lines.push(line);
      if (entry.lines.length > 200) entry.lines.shift();
    }
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  entry.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve((entry.exit = { code, signal }))));
  procs.push(entry);
  return entry;
}

async function waitFor(what, entry, probe) {
  const deadline = Date.now() + WAIT_MS;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (entry?.exit) fail(`${entry.name} exited (code ${entry.exit.code}, signal ${entry.exit.signal}) while waiting for ${what}`);
    try {
      const result = await probe();
      if (result.ok) return result.value;
      last = result.why;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  fail(`timed out after ${WAIT_MS / 1000}s waiting for ${what} (last: ${last})`);
}

async function getJson(url, headers = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON: reported through `text` */
  }
  return { status: res.status, json, text };
}

async function adminQuery(adminUrl, sql) {
  const client = new pg.Client({ connectionString: adminUrl.href });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * BUNDLE_CHECK_DATABASE_URL names a server (a database is created and dropped on it); without
 * it, a throwaway PostgreSQL from the npm-shipped binaries the tests use (@fleet/testing), so a
 * machine with only Node needs no PostgreSQL installed.
 */
async function adminServer(cleanups) {
  if (process.env.BUNDLE_CHECK_DATABASE_URL) return new URL(process.env.BUNDLE_CHECK_DATABASE_URL);
  const { startThrowawayPostgres } = await testing("postgres-cluster");
  const server = await startThrowawayPostgres();
  cleanups.push(() => server.destroy());
  say(`no BUNDLE_CHECK_DATABASE_URL: PostgreSQL from npm-shipped binaries at ${server.url}`);
  return new URL(server.url);
}

async function stopAll(order) {
  for (const entry of order) {
    if (entry.exit) fail(`${entry.name} had already exited (code ${entry.exit.code}) before SIGTERM`);
    entry.child.kill("SIGTERM");
    const exit = await Promise.race([entry.exited, new Promise((r) => setTimeout(() => r(null), 60_000))]);
    if (!exit) fail(`${entry.name} did not exit within 60 s of SIGTERM`);
    if (exit.code !== 0) fail(`${entry.name} exited with code ${exit.code} (signal ${exit.signal}) after SIGTERM`);
    say(`${entry.name} stopped cleanly on SIGTERM (exit 0)`);
  }
}

async function main() {
  if (!process.argv[2]) fail("usage: node scripts/check-bundles-run.mjs <bundles-dir>");
  const env = {
    orchestrator: readEnvFile(path.join(root, "docker/orchestrator.env")),
    worker: readEnvFile(path.join(root, "docker/worker.env")),
    inference: readEnvFile(path.join(root, "docker/inference.env")),
  };
  checkTopology(env);

  const tmp = mkdtempSync(path.join(tmpdir(), "fleet-bundle-check-"));
  const dbName = `fleet_bundle_check_${process.pid}_${randomBytes(3).toString("hex")}`;
  const cleanups = [() => rmSync(tmp, { recursive: true, force: true })];
  try {
    const adminUrl = await adminServer(cleanups);
    await adminQuery(adminUrl, `CREATE DATABASE ${dbName}`);
    cleanups.push(() => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
    const databaseUrl = new URL(adminUrl.href);
    databaseUrl.pathname = `/${dbName}`;
    say(`fresh database ${dbName}`);

    const { startB2TestServer } = await testing("b2-test-server");
    const { startFileServer } = await testing("file-server");
    const { makeTestVideo, makeTestAudio, probeMedia, testMediaTools } = await testing("media");
    // The inference server's fake engine runs ffmpeg/ffprobe too: the same ones (system or npm).
    const mediaTools = testMediaTools();
    const media = path.join(tmp, "media");
    mkdirSync(media);
    await makeTestVideo(path.join(media, "avatar.mp4"), { seconds: 2 });
    await makeTestAudio(path.join(media, "voice.wav"), { seconds: 3 });
    const files = await startFileServer(media);
    cleanups.push(() => files.close());
    const b2 = await startB2TestServer({ tmpRoot: tmp });
    cleanups.push(() => b2.close());

    const internalKey = randomBytes(16).toString("hex");
    const publicKey = randomBytes(16).toString("hex");
    const work = path.join(tmp, "work");
    mkdirSync(work);
    const ports = { orchestrator: await freePort(), worker: await freePort(), inference: await freePort() };
    const orchestratorUrl = `http://127.0.0.1:${ports.orchestrator}`;

    const overrides = {
      inference: {
        INFERENCE_ENGINE: "fake", INFERENCE_PORT: String(ports.inference), INFERENCE_WORK_ROOT: work, INFERENCE_JOBS_DIR: path.join(tmp, "inference-jobs"),
        FFMPEG_BIN: mediaTools.ffmpeg.path, FFPROBE_BIN: mediaTools.ffprobe.path,
      },
      orchestrator: { PORT: String(ports.orchestrator), DATABASE_URL: databaseUrl.href, DATA_DIR: path.join(tmp, "orchestrator-data"), INTERNAL_API_KEY: internalKey, PUBLIC_API_KEYS: publicKey, ALLOW_PRIVATE_NETWORK_URLS: "true" },
      worker: {
        PORT: String(ports.worker), INFERENCE_URL: `http://127.0.0.1:${ports.inference}`, WORK_DIR: work, INFERENCE_WORK_DIR: work,
        BUFFER_WORKER_ID: `bundle-check-${process.pid}`, BUFFER_ORCHESTRATOR_BASE_URL: orchestratorUrl, INTERNAL_API_KEY: internalKey,
        GPU_CLASS: "bundle-check", ALLOW_PRIVATE_NETWORK_URLS: "true", ...b2.env(),
      },
    };
    for (const app of ["orchestrator", "worker", "inference"]) {
      const keys = Object.keys(overrides[app]);
      const shown = keys.filter((k) => !/KEY|SECRET|PASSWORD/.test(k));
      const secrets = keys.length > shown.length ? " (+ secrets)" : "";
      say(`${app}: docker/${app}.env + overrides for this machine: ${shown.join(", ")}${secrets}`);
    }

    // `db:migrate` on its own, as an operator runs it in the image (`node dist/db/migrate-cli.js`);
    // the orchestrator then migrates again at start, which must be a no-op.
    const migrate = start("db:migrate", process.execPath, ["dist/db/migrate-cli.js"], {
      cwd: path.join(bundles, "orchestrator"),
      env: { ...env.orchestrator, ...overrides.orchestrator },
    });
    const migrated = await Promise.race([migrate.exited, new Promise((r) => setTimeout(() => r(null), WAIT_MS))]);
    if (migrated?.code !== 0) fail(`node dist/db/migrate-cli.js failed: ${JSON.stringify(migrated)}`);
    say("orchestrator bundle's db:migrate (node dist/db/migrate-cli.js) migrated the fresh database");

    const inference = start("inference", "python3", [path.join(root, "docker/inference/server.py")], {
      cwd: path.join(root, "docker/inference"),
      env: { PYTHONDONTWRITEBYTECODE: "1", ...env.inference, ...overrides.inference },
    });
    const orchestrator = start("orchestrator", process.execPath, ["dist/main.js"], {
      cwd: path.join(bundles, "orchestrator"),
      env: { ...env.orchestrator, ...overrides.orchestrator },
    });
    await waitFor("orchestrator /readyz", orchestrator, async () => {
      const r = await getJson(`${orchestratorUrl}/readyz`);
      return r.status === 200 ? { ok: true } : { ok: false, why: `HTTP ${r.status} ${r.text.slice(0, 200)}` };
    });
    const healthz = await getJson(`${orchestratorUrl}/healthz`);
    if (healthz.status !== 200) fail(`orchestrator /healthz answered ${healthz.status} (the image's HEALTHCHECK)`);
    say("orchestrator bundle answers /readyz and /healthz (migrations ran at start)");

    await waitFor("inference /health-check READY", inference, async () => {
      const r = await getJson(`http://127.0.0.1:${ports.inference}/health-check`);
      return r.json?.status === "READY" ? { ok: true } : { ok: false, why: r.text.slice(0, 200) };
    });
    say("inference server answers /health-check READY");

    const worker = start("worker", process.execPath, ["dist/main.js"], {
      cwd: path.join(bundles, "worker"),
      env: { ...env.worker, ...overrides.worker },
    });
    await waitFor("worker /hc", worker, async () => {
      const r = await getJson(`http://127.0.0.1:${ports.worker}/hc`);
      return r.status === 200 && r.json?.status === "ok" ? { ok: true } : { ok: false, why: `HTTP ${r.status} ${r.text.slice(0, 200)}` };
    });
    say("worker bundle answers /hc");
    const internal = { "x-internal-api-key": internalKey };
    const seen = await waitFor("the worker online in /internal/buffer/workers", worker, async () => {
      const r = await getJson(`${orchestratorUrl}/internal/buffer/workers`, internal);
      const w = r.json?.workers?.find((x) => x.worker_id === overrides.worker.BUFFER_WORKER_ID);
      return w?.online ? { ok: true, value: w } : { ok: false, why: w ? `status ${w.status}` : `not listed (HTTP ${r.status})` };
    });
    say(`worker heartbeat accepted: ${seen.worker_id} online, status ${seen.status}, engine ${JSON.stringify(seen.engine)}`);

    const created = await fetch(`${orchestratorUrl}/v1/avatar/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": publicKey },
      body: JSON.stringify({ video_url: files.urlFor("/avatar.mp4"), audio_url: files.urlFor("/voice.wav"), aspect_ratio: "1:1", resolution: "512x512" }),
      signal: AbortSignal.timeout(10_000),
    });
    const job = await created.json();
    if (created.status !== 201) fail(`POST /v1/avatar/jobs answered ${created.status}: ${JSON.stringify(job).slice(0, 300)}`);
    const done = await waitFor(`job ${job.id} to finish`, worker, async () => {
      const r = await getJson(`${orchestratorUrl}/v1/avatar/jobs/${job.id}`, { "x-api-key": publicKey });
      const status = r.json?.status;
      if (status === "failed" || status === "cancelled") fail(`job ${job.id} ${status}: ${r.json.error} ${JSON.stringify(r.json.error_info)}`);
      return status === "succeeded" ? { ok: true, value: r.json } : { ok: false, why: `status ${status}, progress ${r.json?.progress}` };
    });
    const output = await fetch(done.output_url, { signal: AbortSignal.timeout(10_000) });
    const bytes = Buffer.from(await output.arrayBuffer());
    if (output.status !== 200 || bytes.length === 0) fail(`output ${done.output_url} answered ${output.status} with ${bytes.length} bytes`);
    const saved = path.join(tmp, "output.mp4");
    writeFileSync(saved, bytes);
    const probe = await probeMedia(saved);
    if (!probe.hasVideo || !probe.hasAudio) fail(`output ${done.output_url} is not a video with sound: ${JSON.stringify(probe)}`);
    say(`job ${job.id} succeeded through the http driver; output uploaded to B2: ${done.output_url} (${bytes.length} bytes, ${probe.durationSec}s)`);

    // The one-GPU worker stops first, so the box's two workers are the only ones claiming.
    await stopAll([worker, inference]);
    const box = await checkGpuBox({ bundles, env, tmp, b2, files, orchestratorUrl, internalKey, publicKey, mediaTools });

    await stopAll([...box.workers, orchestrator, ...box.engines]);
  } finally {
    for (const entry of procs) if (!entry.exit) entry.child.kill("SIGKILL");
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        console.error(`check-bundles: cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/**
 * A two-GPU box on the CPU engine, from the compose file the worker bundle's own CLI generates.
 * The generated environment is used as is, except what this machine must change (printed):
 * container paths under the work volume map to a temp dir, the engine is the fake one, and the
 * orchestrator, key and B2 are this check's.
 */
async function checkGpuBox({ bundles, env, tmp, b2, files, orchestratorUrl, internalKey, publicKey, mediaTools }) {
  const cli = path.join(bundles, "worker");
  const [workerBase, inferenceBase] = [await freePortRun(2), await freePortRun(2)];
  const composeFile = path.join(tmp, "compose.gpu-box.yaml");
  const boxName = `bundle-check-${process.pid}`;
  const init = await runFleet(cli, ["gpu-box", "init", "--gpus", "0,1", "--box", boxName, "--worker-port", String(workerBase), "--inference-port", String(inferenceBase), "--out", composeFile], {});
  if (init.code !== 0) fail(`fleet gpu-box init failed (${init.code}): ${init.stderr || init.stdout}`);
  const { parse } = createRequire(path.join(cli, "cli/package.json"))("yaml");
  const services = parse(readFileSync(composeFile, "utf8")).services;
  say(`fleet gpu-box init (worker bundle) wrote a two-GPU box: ${Object.keys(services).join(", ")}`);

  const workRoot = path.join(tmp, "box-work");
  const hostPath = (p) => (typeof p === "string" && p.startsWith("/var/lib/fleet/") ? path.join(workRoot, p.slice("/var/lib/fleet/".length)) : p);
  const mapPaths = (vars) => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, k === "FLEET_GPU_BOX" ? v : hostPath(v)]));
  say("GPU box overrides for this machine: /var/lib/fleet/* -> a temp dir, INFERENCE_ENGINE=fake, FFMPEG_BIN/FFPROBE_BIN, orchestrator URL, key, GPU_CLASS, B2_* (+ secrets)");

  const engines = [];
  const workers = [];
  const workerEnvs = [];
  for (const gpu of [0, 1]) {
    const engineEnv = {
      PYTHONDONTWRITEBYTECODE: "1",
      ...env.inference,
      ...mapPaths(services[`inference-gpu${gpu}`].environment),
      INFERENCE_ENGINE: "fake",
      // The image ships its own ffmpeg; here the engine uses the one the tests resolved (system or npm).
      FFMPEG_BIN: mediaTools.ffmpeg.path,
      FFPROBE_BIN: mediaTools.ffprobe.path,
    };
    mkdirSync(engineEnv.INFERENCE_WORK_ROOT, { recursive: true });
    engines.push(start(`inference-gpu${gpu}`, "python3", [path.join(root, "docker/inference/server.py")], { cwd: path.join(root, "docker/inference"), env: engineEnv }));
    workerEnvs.push({
      ...env.worker,
      ...mapPaths(services[`worker-gpu${gpu}`].environment),
      BUFFER_ORCHESTRATOR_BASE_URL: orchestratorUrl,
      INTERNAL_API_KEY: internalKey,
      GPU_CLASS: "bundle-check",
      ALLOW_PRIVATE_NETWORK_URLS: "true",
      ...b2.env(),
    });
  }
  const ids = workerEnvs.map((e) => e.BUFFER_WORKER_ID);
  const ports = workerEnvs.flatMap((e) => [e.PORT, new URL(e.INFERENCE_URL).port]);
  if (new Set(ids).size !== 2 || new Set(ports).size !== 4) fail(`the generated ids or ports are not distinct: ${ids.join(", ")} / ${ports.join(", ")}`);
  for (const [gpu, engine] of engines.entries()) {
    await waitFor(`inference-gpu${gpu} READY`, engine, async () => {
      const r = await getJson(`${workerEnvs[gpu].INFERENCE_URL}/health-check`);
      return r.json?.status === "READY" ? { ok: true } : { ok: false, why: r.text.slice(0, 200) };
    });
  }
  for (const [gpu, workerEnv] of workerEnvs.entries()) {
    workers.push(start(`worker-gpu${gpu}`, process.execPath, ["dist/main.js"], { cwd: cli, env: workerEnv }));
  }
  const internal = { "x-internal-api-key": internalKey };
  for (const [gpu, id] of ids.entries()) {
    await waitFor(`${id} online`, workers[gpu], async () => {
      const r = await getJson(`${orchestratorUrl}/internal/buffer/workers`, internal);
      const w = r.json?.workers?.find((x) => x.worker_id === id);
      return w?.online && w.engine?.state === "ready" ? { ok: true } : { ok: false, why: w ? `status ${w.status}, engine ${JSON.stringify(w.engine)}` : "not listed" };
    });
  }
  say(`both GPUs heartbeat: ${ids.map((id, i) => `${id} (worker :${workerEnvs[i].PORT}, engine ${workerEnvs[i].INFERENCE_URL})`).join(", ")}`);

  // Two jobs at once: a worker at capacity claims nothing, so each GPU takes one.
  const submit = async () => {
    const res = await fetch(`${orchestratorUrl}/v1/avatar/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": publicKey },
      body: JSON.stringify({ video_url: files.urlFor("/avatar.mp4"), audio_url: files.urlFor("/voice.wav"), aspect_ratio: "1:1", resolution: "512x512" }),
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status !== 201) fail(`POST /v1/avatar/jobs answered ${res.status}`);
    return (await res.json()).id;
  };
  const jobIds = await Promise.all([submit(), submit()]);
  const done = await Promise.all(
    jobIds.map((id) =>
      waitFor(`box job ${id}`, null, async () => {
        const r = await getJson(`${orchestratorUrl}/v1/avatar/jobs/${id}`, { "x-api-key": publicKey });
        if (r.json?.status === "failed") fail(`box job ${id} failed: ${r.json.error}`);
        return r.json?.status === "succeeded" ? { ok: true, value: r.json } : { ok: false, why: `status ${r.json?.status}` };
      }),
    ),
  );
  const takers = new Set(done.map((j) => j.worker_id));
  if (takers.size !== 2 || !ids.every((id) => takers.has(id))) fail(`each GPU should take one job; taken by ${done.map((j) => j.worker_id).join(", ")}`);
  for (const [gpu, id] of ids.entries()) {
    const job = done.find((j) => j.worker_id === id);
    if (!existsSync(path.join(workerEnvs[gpu].WORK_DIR))) fail(`${id}'s work dir ${workerEnvs[gpu].WORK_DIR} was never made`);
    say(`GPU ${gpu} (${id}) took job ${job.id}: succeeded`);
  }

  // What an operator types on the box: `docker compose ... exec worker-gpu0 fleet doctor`.
  const healthy = await runFleet(cli, ["doctor"], workerEnvs[0]);
  if (healthy.code !== 0) fail(`fleet doctor in worker-gpu0's environment failed (${healthy.code}):\n${healthy.stdout}${healthy.stderr}`);
  for (const line of ["gpu0 heartbeat", "gpu0 inference", "gpu1 heartbeat", "gpu1 inference"]) {
    if (!healthy.stdout.split("\n").some((l) => l.startsWith(`✓ ${line}`))) fail(`fleet doctor printed no passing "${line}" line:\n${healthy.stdout}`);
  }
  say("fleet doctor (worker bundle, worker-gpu0's environment only) passes for both GPUs");

  engines[1].child.kill("SIGTERM");
  await engines[1].exited;
  const broken = await runFleet(cli, ["doctor"], workerEnvs[0]);
  const failed = broken.stdout.split("\n").filter((l) => l.startsWith("✗"));
  if (broken.code !== 1 || !failed.some((l) => l.startsWith("✗ gpu1 inference")) || failed.some((l) => l.includes("gpu0"))) {
    fail(`with inference-gpu1 stopped, fleet doctor should fail on gpu1 only (exit ${broken.code}):\n${broken.stdout}${broken.stderr}`);
  }
  say(`with inference-gpu1 stopped, fleet doctor names it: ${failed.join(" | ")}`);
  if (engines[1].exit.code !== 0) fail(`inference-gpu1 exited with ${JSON.stringify(engines[1].exit)} on SIGTERM`);
  engines.pop();

  const listed = await runFleet(path.join(bundles, "orchestrator"), ["workers"], { ...env.orchestrator, PORT: new URL(orchestratorUrl).port, INTERNAL_API_KEY: internalKey, PUBLIC_API_KEYS: publicKey });
  const boxLine = listed.stdout.split("\n").find((l) => l.startsWith(`box ${hostname()}: `));
  if (listed.code !== 0 || boxLine === undefined) fail(`fleet workers (orchestrator bundle) shows no line for box ${hostname()}:\n${listed.stdout}${listed.stderr}`);
  say(`fleet workers (orchestrator bundle, its own environment) groups by box: ${boxLine}`);
  return { workers, engines };
}

main().then(
  () => {
    say("all deploy bundles start with the compose environments and answer their health checks");
    process.exit(0);
  },
  (err) => {
    console.error(`check-bundles: FAILED: ${err instanceof CheckFailed ? err.message : (err?.stack ?? String(err))}`);
    for (const entry of procs) {
      console.error(`--- last log lines of ${entry.name} ---`);
      console.error(entry.lines.slice(-40).join("\n"));
    }
    process.exit(1);
  },
);
