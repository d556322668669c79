#!/usr/bin/env node
// The quick start: the orchestrator on embedded PGlite plus CPU workers (ffmpeg engine, local
// storage), with readable logs and a banner. `./fleetw start` runs it after install and build.
//
//   node scripts/start-local.mjs [--port 8080] [--workers 1] [--worker-port 8000] [--host 127.0.0.1]
//                                [--data-dir .data] [--json] [--verbose]
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startChild } from "./start-local-child.mjs";
import { formatLogLine } from "./start-local-log-format.mjs";
import { assertPortFree, freePort, waitUntil } from "./start-local-net.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `usage: ./fleetw start [--port 8080] [--workers N] [--worker-port 8000] [--host 127.0.0.1] [--data-dir .data] [--json] [--verbose]

  --port N          orchestrator port (0 picks a free one)
  --workers N       number of CPU workers local-cpu-1..N (default 1)
  --worker-port N   port of the first worker; the others follow (0 picks free ones)
  --host H          address everything listens on (default 127.0.0.1: this machine only)
  --data-dir DIR    PGlite data, worker dirs and dev keys (default .data)
  --json            print the children's raw pino JSON instead of short lines
  --verbose         also print routine request lines (heartbeats, claims, polls)
Set DATABASE_URL to use a real PostgreSQL instead of embedded PGlite.`;

/** Paths inside the working directory are shown relative (short banner), others in full. */
function shown(path) {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
}

function fail(message) {
  process.stderr.write(`start-local: ${message}\n`);
  process.exit(1);
}

let args;
try {
  args = parseArgs({
    options: {
      port: { type: "string", default: "8080" },
      workers: { type: "string", default: "1" },
      "worker-port": { type: "string", default: "8000" },
      host: { type: "string", default: "127.0.0.1" },
      "data-dir": { type: "string", default: join(root, ".data") },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
} catch (err) {
  process.stderr.write(`start-local: ${err.message}\n${USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const int = (name, min, max) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`start-local: --${name} must be an integer from ${min} to ${max}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
};
const workerCount = int("workers", 1, 16);
const requestedPort = int("port", 0, 65535);
const requestedWorkerPort = int("worker-port", 0, 65535);
const host = args.host;
const dataDir = resolve(args["data-dir"]);
const color = process.stdout.isTTY && !args.json;
const databaseUrl = process.env.DATABASE_URL?.trim() || undefined;

const entries = {
  orchestrator: join(root, "apps/orchestrator/dist/main.js"),
  worker: join(root, "apps/worker/dist/main.js"),
};
for (const path of Object.values(entries)) {
  if (!existsSync(path)) fail(`${relative(root, path)} is missing: build first (./fleetw start builds, or ./fleetw pnpm build)`);
}

/** Development keys, generated once so a restart keeps the same keys; never commit .data/. */
function loadOrCreateDevKeys() {
  const file = join(dataDir, "dev-keys.json");
  if (existsSync(file)) {
    try {
      const keys = JSON.parse(readFileSync(file, "utf8"));
      if (typeof keys.internal_api_key === "string" && typeof keys.public_api_key === "string") return { file, keys };
    } catch {
      // Unreadable: make new ones below.
    }
  }
  const keys = {
    note: "Development keys for ./fleetw start. Never use them in production.",
    internal_api_key: `dev-internal-${randomBytes(16).toString("hex")}`,
    public_api_key: `dev-public-${randomBytes(16).toString("hex")}`,
    created_at: new Date().toISOString(),
  };
  writeFileSync(file, JSON.stringify(keys, null, 2) + "\n", { mode: 0o600 });
  return { file, keys };
}

// The CPU engine is ffmpeg; without it the worker would start and never become ready. The
// workers find it as this does: FFMPEG_PATH/FFPROBE_PATH, the system's, else the static builds
// that `pnpm install` put in node_modules (so a machine with only Node needs nothing else).
const { resolveMediaTools } = await import("../packages/media-tools/dist/index.js");
for (const tool of Object.values(resolveMediaTools(process.env))) {
  if (spawnSync(tool.path, ["-version"], { stdio: "ignore" }).status !== 0) {
    fail(`${tool.name} does not run (${tool.source}: ${tool.path}); set ${tool.name === "ffmpeg" ? "FFMPEG_PATH" : "FFPROBE_PATH"}, run pnpm install, or install ffmpeg (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)`);
  }
}

mkdirSync(dataDir, { recursive: true });
const { file: keysFile, keys } = loadOrCreateDevKeys();
const stateFile = join(dataDir, "local-fleet.json");

const orchestratorPort = requestedPort === 0 ? await freePort(host) : requestedPort;
const workerPorts = [];
for (let i = 0; i < workerCount; i++) {
  workerPorts.push(requestedWorkerPort === 0 ? await freePort(host) : requestedWorkerPort + i);
}
try {
  await assertPortFree(host, orchestratorPort, "--port");
  for (const p of workerPorts) await assertPortFree(host, p, "--worker-port");
} catch (err) {
  fail(err.message);
}

const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
const apiUrl = `http://${urlHost}:${orchestratorPort}`;

const children = [];
let stopping = false;
let exitCode = 0;

function log(line) {
  const prefix = color ? "\x1b[1m[start-local]\x1b[0m" : "[start-local]";
  process.stdout.write(`${prefix} ${line}\n`);
}

function printChildLine(child, raw) {
  if (args.json) {
    process.stdout.write(raw + "\n");
    return;
  }
  const line = formatLogLine(raw, { verbose: args.verbose, color });
  if (line === null) return;
  const prefix = color ? `\x1b[${child.color}m[${child.label}]\x1b[0m` : `[${child.label}]`;
  process.stdout.write(`${prefix} ${line}\n`);
}

function spawnApp(label, entry, env, colorCode) {
  const child = startChild({
    label,
    color: colorCode,
    command: process.execPath,
    args: [entry],
    cwd: root,
    env,
    onLine: (c, line) => printChildLine(c, line),
    onExit: (c, code, signal) => {
      if (stopping) {
        log(`${c.label} stopped${code ? ` (exit code ${code})` : signal ? ` (${signal})` : ""}`);
        return;
      }
      log(`${c.label} exited unexpectedly (${signal ?? `exit code ${code}`}); stopping the rest`);
      exitCode = 1;
      void shutdown();
    },
  });
  children.push(child);
  return child;
}

function baseEnv() {
  const env = { ...process.env };
  // The launcher decides these; a stray value in the shell must not redirect the quick start.
  for (const name of ["PORT", "HOST", "INTERNAL_API_KEY", "PUBLIC_API_KEYS", "STORAGE", "INFERENCE_DRIVER", "INFERENCE_URL", "WORK_DIR", "LOCAL_STORAGE_DIR", "LOCAL_STORAGE_BASE_URL", "BUFFER_WORKER_ID", "WORKER_MODE", "LOG_PRETTY"]) {
    delete env[name];
  }
  return { ...env, ALLOW_PRIVATE_NETWORK_URLS: "true", INTERNAL_API_KEY: keys.internal_api_key };
}

async function shutdown() {
  if (stopping) return;
  stopping = true;
  // Workers first, so their final heartbeat and any released job still reach the orchestrator.
  const workers = children.filter((c) => c.kind === "worker");
  const orchestrator = children.filter((c) => c.kind === "orchestrator");
  for (const c of workers) c.terminate();
  await Promise.all(workers.map((c) => c.stopped(30_000)));
  for (const c of orchestrator) c.terminate();
  await Promise.all(orchestrator.map((c) => c.stopped(15_000)));
  rmSync(stateFile, { force: true });
  log(exitCode === 0 ? "all stopped" : "stopped after a failure");
  process.exit(exitCode);
}

let interrupts = 0;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    interrupts += 1;
    if (interrupts === 1) {
      log(`${signal}: stopping workers (they finish or hand back running jobs), then the orchestrator`);
      void shutdown();
    } else if (interrupts === 2) {
      log(`${signal} again: asking everything to stop now`);
      for (const c of children) c.terminate();
    } else {
      for (const c of children) c.kill();
    }
  });
}
// Children run in their own process groups (so a terminal's Ctrl-C reaches only this launcher,
// which stops them in order); if the launcher itself dies, do not leave them running.
process.on("exit", () => {
  for (const c of children) c.kill();
});

log(`data in ${shown(dataDir)} (${databaseUrl ? "PostgreSQL from DATABASE_URL" : "embedded PGlite"})`);
const orchestrator = spawnApp(
  "orchestrator",
  entries.orchestrator,
  {
    ...baseEnv(),
    HOST: host,
    PORT: String(orchestratorPort),
    DATA_DIR: join(dataDir, "orchestrator"),
    PUBLIC_API_KEYS: keys.public_api_key,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  },
  36,
);
orchestrator.kind = "orchestrator";

const ready = (url, check) => async () => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000), headers: { "x-internal-api-key": keys.internal_api_key } });
    const body = await res.text();
    return res.ok && (check === undefined || check(body));
  } catch {
    return false;
  }
};

try {
  await waitUntil(ready(`${apiUrl}/readyz`), { timeoutMs: 120_000, what: `the orchestrator at ${apiUrl}/readyz`, abandon: () => stopping });
} catch (err) {
  if (!stopping) {
    log(err.message);
    exitCode = 1;
    await shutdown();
  }
}

const workers = workerPorts.map((port, i) => {
  const id = `local-cpu-${i + 1}`;
  const workDir = join(dataDir, i === 0 ? "worker" : `worker-${i + 1}`);
  const workerUrl = `http://${urlHost}:${port}`;
  const outputsDir = join(workDir, "outputs");
  const child = spawnApp(
    workerCount === 1 ? "worker" : `worker-${i + 1}`,
    entries.worker,
    {
      ...baseEnv(),
      BUFFER_WORKER_ID: id,
      BUFFER_ORCHESTRATOR_BASE_URL: apiUrl,
      GPU_CLASS: "cpu-dev",
      INFERENCE_DRIVER: "ffmpeg",
      STORAGE: "local",
      WORK_DIR: workDir,
      LOCAL_STORAGE_DIR: outputsDir,
      LOCAL_STORAGE_BASE_URL: `${workerUrl}/outputs`,
      HOST: host,
      PORT: String(port),
    },
    [35, 33, 34, 32][i % 4],
  );
  child.kind = "worker";
  return { id, url: workerUrl, child, outputs_url: `${workerUrl}/outputs`, outputs_dir: outputsDir, work_dir: workDir };
});

const online = (id) =>
  ready(`${apiUrl}/internal/buffer/workers`, (body) => {
    try {
      // Online and its engine ready: the banner promises a fleet that can run a job right away.
      return JSON.parse(body).workers.some((w) => w.worker_id === id && w.online && w.engine?.state === "ready");
    } catch {
      return false;
    }
  });

try {
  for (const w of workers) {
    await waitUntil(ready(`${w.url}/healthz`), { timeoutMs: 60_000, what: `worker ${w.id} at ${w.url}/healthz`, abandon: () => stopping });
    await waitUntil(online(w.id), { timeoutMs: 60_000, what: `a heartbeat from ${w.id} with its engine ready`, abandon: () => stopping });
  }
} catch (err) {
  if (!stopping) {
    log(err.message);
    exitCode = 1;
    await shutdown();
  }
}

if (!stopping) {
  writeFileSync(
    stateFile,
    JSON.stringify(
      {
        pid: process.pid,
        url: apiUrl,
        database: databaseUrl ? "postgres" : "pglite",
        orchestrator_pid: orchestrator.pid,
        workers: workers.map((w) => ({
          worker_id: w.id,
          url: w.url,
          pid: w.child.pid,
          outputs_url: w.outputs_url,
          outputs_dir: w.outputs_dir,
          work_dir: w.work_dir,
          inference_driver: "ffmpeg",
          storage: "local",
        })),
        started_at: new Date().toISOString(),
      },
      null,
      2,
    ) + "\n",
  );
  printBanner();
}

function printBanner() {
  const bold = (s) => (color ? `\x1b[1m${s}\x1b[0m` : s);
  const rule = "─".repeat(78);
  const keysPath = shown(keysFile);
  const defaultDataDir = dataDir === join(root, ".data");
  const fleet = defaultDataDir ? "./fleetw fleet" : `FLEET_DATA_DIR=${dataDir} ./fleetw fleet`;
  const sql = "SELECT worker_id, last_heartbeat, status FROM buffer_workers ORDER BY last_heartbeat DESC;";
  const lines = [
    "",
    rule,
    bold(`  Fleet is running: orchestrator + ${workerCount} CPU worker${workerCount === 1 ? "" : "s"}`),
    "",
    `  API          ${apiUrl}`,
    `  API docs     ${apiUrl}/docs`,
    ...workers.map((w) => `  worker       ${w.id.padEnd(12)} ${w.url}/healthz   outputs: ${w.outputs_url}/`),
    `  database     ${databaseUrl ? "PostgreSQL (DATABASE_URL)" : `embedded PGlite in ${shown(join(dataDir, "orchestrator"))}`}`,
    "",
    "  The workers use the CPU ffmpeg engine: it loops the avatar to the voice, lips do not move.",
    "",
    `  Development keys (kept in ${keysPath}; never use them in production):`,
    `    INTERNAL_API_KEY=${keys.internal_api_key}`,
    `    FLEET_API_KEY=${keys.public_api_key}`,
    "",
    bold("  Try, in another terminal:"),
    `    ${fleet} workers      the workers table: local-cpu-1 online, heartbeat age`,
    `    ${fleet} demo         makes a clip and a voice, runs a job, prints the output video`,
    `    ${fleet} jobs         recent jobs`,
    `    ${fleet} doctor       the checks a GPU box gets, run against local-cpu-1`,
    `    curl ${apiUrl}/healthz`,
    "",
    databaseUrl
      ? `  The operators' SQL: psql "$DATABASE_URL" -c "${sql}"`
      : `  The operators' SQL (${sql.slice(0, 48)}...) needs PostgreSQL:\n` +
        "  embedded PGlite lives inside the orchestrator process, so use fleet workers, or\n" +
        "  start with DATABASE_URL=postgres://... ./fleetw start and run it with psql.",
    "",
    "  Ctrl-C stops the workers, then the orchestrator.",
    rule,
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
