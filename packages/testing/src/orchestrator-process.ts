import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The built orchestrator; run `pnpm -C apps/orchestrator build` first (turbo's test task does). */
export const ORCHESTRATOR_MAIN = fileURLToPath(new URL("../../../apps/orchestrator/dist/main.js", import.meta.url));

export interface OrchestratorProcessOptions {
  /** PostgreSQL to use; unset runs embedded PGlite in `dataDir`. */
  databaseUrl?: string;
  /** PGlite data directory; default a fresh temp dir, removed when the process is stopped. */
  dataDir?: string;
  internalApiKey?: string;
  publicApiKey?: string;
  /** Fixed port (to restart on the same URL); default 0, the real port is read from the log. */
  port?: number;
  /** Extra or overriding environment variables (WORKER_OFFLINE_AFTER_SEC, LEASE_TTL_SEC, ...). */
  env?: Record<string, string>;
  /** How long to wait for /readyz; default 30 s. */
  startTimeoutMs?: number;
}

export interface OrchestratorProcess {
  url: string;
  port: number;
  pid: number;
  internalApiKey: string;
  publicApiKey: string;
  dataDir: string | undefined;
  /** Every stdout/stderr line so far (pino JSON lines, plus anything else the process printed). */
  logs(): string[];
  /** Parsed pino lines (non-JSON lines skipped). */
  logRecords(): Record<string, unknown>[];
  /** Sends `signal` (SIGTERM) and waits for exit (SIGKILL after 15 s). Resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL, no shutdown: a crash. */
  kill(): Promise<void>;
  /** Resolves when the process exits, for whatever reason. */
  exited: Promise<number | null>;
}

/** Short intervals so tests see leases expire and workers go offline in seconds, not minutes. */
const TEST_DEFAULTS: Record<string, string> = {
  HOST: "127.0.0.1",
  WORKER_OFFLINE_AFTER_SEC: "6",
  LEASE_TTL_SEC: "6",
  HEARTBEAT_INTERVAL_SEC: "1",
  REAPER_INTERVAL_SEC: "0.5",
  RETRY_BACKOFF_BASE_SEC: "1",
  ALLOW_PRIVATE_NETWORK_URLS: "true",
  LOG_LEVEL: "info",
  LOG_PRETTY: "false",
};

function randomKey(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString("hex")}`;
}

/**
 * Starts the built orchestrator as a child process on 127.0.0.1 and waits until /readyz answers
 * 200. Nothing is mocked: a real HTTP server over a real database (PostgreSQL or PGlite).
 */
export async function startOrchestratorProcess(options: OrchestratorProcessOptions = {}): Promise<OrchestratorProcess> {
  const internalApiKey = options.internalApiKey ?? randomKey("internal");
  const publicApiKey = options.publicApiKey ?? randomKey("public");
  const ownsDataDir = !options.databaseUrl && !options.dataDir;
  const dataDir = options.databaseUrl ? undefined : (options.dataDir ?? (await mkdtemp(join(tmpdir(), "fleet-orch-"))));

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    ...TEST_DEFAULTS,
    PORT: String(options.port ?? 0),
    INTERNAL_API_KEY: internalApiKey,
    PUBLIC_API_KEYS: publicApiKey,
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : { DATA_DIR: dataDir ?? "" }),
    ...options.env,
  };
  const child = spawn(process.execPath, [ORCHESTRATOR_MAIN], { env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let resolveAddress: (address: string) => void = () => undefined;
  const address = new Promise<string>((resolve) => {
    resolveAddress = resolve;
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      if (line.includes('"orchestrator_started"')) {
        try {
          const record = JSON.parse(line) as { address?: string };
          if (record.address) resolveAddress(record.address);
        } catch {
          // not JSON after all; keep waiting
        }
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const cleanup = async () => {
    if (ownsDataDir && dataDir) await rm(dataDir, { recursive: true, force: true });
  };

  const timeoutMs = options.startTimeoutMs ?? 30_000;
  let url: string;
  try {
    url = await raceStart(address, exited, timeoutMs, () => lines);
    await waitReady(url, exited, timeoutMs, () => lines);
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    await cleanup();
    throw err;
  }
  const port = Number(new URL(url).port);

  return {
    url,
    port,
    pid: child.pid ?? -1,
    internalApiKey,
    publicApiKey,
    dataDir,
    logs: () => [...lines],
    logRecords: () => lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    }),
    exited,
    async stop(signal = "SIGTERM") {
      const code = await stopChild(child, exited, signal);
      await cleanup();
      return code;
    },
    async kill() {
      await stopChild(child, exited, "SIGKILL");
      await cleanup();
    },
  };
}

async function raceStart(
  address: Promise<string>,
  exited: Promise<number | null>,
  timeoutMs: number,
  lines: () => string[],
): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      address,
      exited.then((code) => {
        throw new Error(`orchestrator exited with ${code} before listening:\n${lines().join("\n")}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`orchestrator did not start in ${timeoutMs} ms:\n${lines().join("\n")}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitReady(url: string, exited: Promise<number | null>, timeoutMs: number, lines: () => string[]): Promise<void> {
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !done) {
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      if (response.status === 200) return;
    } catch {
      // not accepting connections yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`orchestrator at ${url} never became ready:\n${lines().join("\n")}`);
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}
