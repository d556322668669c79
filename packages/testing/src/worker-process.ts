import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The built worker; run `pnpm -C apps/worker build` first (turbo's test task does). */
export const WORKER_MAIN = fileURLToPath(new URL("../../../apps/worker/dist/main.js", import.meta.url));

export interface WorkerProcessOptions {
  /** Joins an orchestrator: sets BUFFER_ORCHESTRATOR_BASE_URL. */
  orchestratorUrl?: string;
  internalApiKey?: string;
  /** BUFFER_WORKER_ID; setting it (with the two above) starts the buffer loop. */
  workerId?: string;
  /** WORK_DIR; default a fresh temp dir, removed by stop()/kill() unless `keepWorkDir`. */
  workDir?: string;
  keepWorkDir?: boolean;
  /** Fixed port; default 0, the real port is read from the `worker_http_listening` line. */
  port?: number;
  /** Any other worker variable (BUFFER_POLL_INTERVAL_SEC, INFERENCE_DRIVER, STORAGE, B2_*...). */
  env?: Record<string, string>;
  /** How long to wait for the HTTP port; default 20 s. */
  startTimeoutMs?: number;
}

export type LogRecord = Record<string, unknown> & { msg?: string; level?: string };

export interface WorkerProcess {
  url: string;
  port: number;
  pid: number;
  workDir: string;
  /** Every stdout/stderr line so far. */
  logs(): string[];
  /** Parsed pino lines (non-JSON lines skipped). */
  logRecords(): LogRecord[];
  /**
   * Resolves with the first record whose `msg` is `msg` (and that `where` accepts), searching the
   * lines already printed too unless `afterIndex` says where to start; rejects after `timeoutMs`.
   */
  waitForLog(msg: string, opts?: { timeoutMs?: number; where?: (r: LogRecord) => boolean; afterIndex?: number }): Promise<LogRecord>;
  /** Sends `signal` (SIGTERM) and waits for exit (SIGKILL after `killAfterMs`, 30 s). Resolves to the exit code. */
  stop(signal?: NodeJS.Signals, opts?: { killAfterMs?: number }): Promise<number | null>;
  /** Sends a signal without waiting (a second SIGTERM during a drain). */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL, no shutdown: a crash. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * Starts the built worker (`node apps/worker/dist/main.js`) as a child process and waits until
 * its HTTP port answers. Logs are captured line by line, so tests assert on the same JSON lines
 * operators grep for.
 */
export async function startWorkerProcess(options: WorkerProcessOptions = {}): Promise<WorkerProcess> {
  const ownsWorkDir = !options.workDir;
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), "fleet-worker-")));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOST: "127.0.0.1",
    PORT: String(options.port ?? 0),
    WORK_DIR: workDir,
    LOG_LEVEL: "debug",
    ALLOW_PRIVATE_NETWORK_URLS: "true",
    ...(options.orchestratorUrl ? { BUFFER_ORCHESTRATOR_BASE_URL: options.orchestratorUrl } : {}),
    ...(options.internalApiKey ? { INTERNAL_API_KEY: options.internalApiKey } : {}),
    ...(options.workerId ? { BUFFER_WORKER_ID: options.workerId } : {}),
    ...options.env,
  };
  // Its own process group, so a crash kills what it started too (ffmpeg, ffprobe), as killing a
  // container does: an orphaned ffmpeg would otherwise keep writing into the work dir being removed.
  const child = spawn(process.execPath, [WORKER_MAIN], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const lines: string[] = [];
  const records: LogRecord[] = [];
  const listeners = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed && typeof parsed === "object") records.push(parsed as LogRecord);
      } catch {
        // a non-JSON line (a crash trace): kept in lines() only
      }
      for (const l of [...listeners]) l();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
    for (const l of [...listeners]) l();
  });
  const cleanup = async () => {
    if (ownsWorkDir && !options.keepWorkDir) await rm(workDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  };

  function waitForLog(
    msg: string,
    opts: { timeoutMs?: number; where?: (r: LogRecord) => boolean; afterIndex?: number } = {},
  ): Promise<LogRecord> {
    const timeoutMs = opts.timeoutMs ?? 20_000;
    let from = opts.afterIndex ?? 0;
    return new Promise<LogRecord>((resolve, reject) => {
      const check = () => {
        for (; from < records.length; from++) {
          const r = records[from];
          if (r && r.msg === msg && (!opts.where || opts.where(r))) {
            done();
            resolve(r);
            return;
          }
        }
        if (exitCode !== undefined) {
          done();
          reject(new Error(`worker exited (${exitCode}) before logging ${msg}:\n${lines.slice(-40).join("\n")}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`worker did not log ${msg} within ${timeoutMs} ms:\n${lines.slice(-40).join("\n")}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }

  let listening: LogRecord;
  try {
    listening = await waitForLog("worker_http_listening", { timeoutMs: options.startTimeoutMs ?? 20_000 });
  } catch (err) {
    killGroup(child);
    await exited;
    await cleanup();
    throw err;
  }
  const port = Number(listening.port);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    workDir,
    logs: () => [...lines],
    logRecords: () => [...records],
    waitForLog,
    exited,
    signal(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async stop(signal = "SIGTERM", opts = {}) {
      const code = await stopChild(child, exited, signal, opts.killAfterMs ?? 30_000);
      await cleanup();
      return code;
    },
    async kill() {
      await stopChild(child, exited, "SIGKILL", 0);
      await cleanup();
    },
  };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>, signal: NodeJS.Signals, killAfterMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  // SIGTERM goes to the worker alone (its drain stops its own children); SIGKILL to its whole group.
  if (signal === "SIGKILL") killGroup(child);
  else child.kill(signal);
  const timer = setTimeout(() => killGroup(child), killAfterMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}
