import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Debian's interpreter; the stand-ins use the standard library only. */
export const PYTHON = "/usr/bin/python3";

const SCRIPTS = fileURLToPath(new URL("../original-workers/", import.meta.url));

export type OriginalEvent = Record<string, unknown> & { event: string };

export interface OriginalWorkerOptions {
  orchestratorUrl: string;
  internalApiKey: string;
  /** BUFFER_WORKER_ID for the buffer loop, WORKER_ID for the main tier. */
  workerId: string;
  /** What the fake /generate takes (FAKE_GENERATE_SECONDS) and answers: success | media_error | processing_error. */
  generateSeconds?: number;
  outcome?: "success" | "media_error" | "processing_error";
  /** How the key header is spelled on /internal calls (the Vast supervisor wrote X-Internal-Api-Key). */
  keyHeader?: string;
  /** Anything else: BUFFER_POLL_INTERVAL_SEC, HEARTBEAT_INTERVAL_SEC, POLL_INTERVAL_SEC, WORKER_ID for /generate's progress... */
  env?: Record<string, string>;
}

export interface OriginalWorkerProcess {
  pid: number;
  events(): OriginalEvent[];
  /** Resolves with the first event named `event` that `where` accepts (earlier ones count); rejects after `timeoutMs`. */
  waitFor(event: string, opts?: { where?: (e: OriginalEvent) => boolean; timeoutMs?: number }): Promise<OriginalEvent>;
  /** SIGKILL by PID: the container dies with no goodbye. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * The original buffer loop (heartbeat `idle` → claim → /generate with no heartbeat meanwhile →
 * `/status` with an error string) and its /generate, as one Python process like the original's
 * uvicorn app. `WORKER_ID` (what /generate reports progress under) defaults to another id than
 * the loop's, as on the original's boxes.
 */
export function startOriginalBufferWorker(options: OriginalWorkerOptions): Promise<OriginalWorkerProcess> {
  return startStandIn("buffer_worker.py", options, {
    BUFFER_WORKER_ID: options.workerId,
    BUFFER_ORCHESTRATOR_BASE_URL: options.orchestratorUrl,
    ORCHESTRATOR_BASE_URL: options.orchestratorUrl,
    WORKER_ID: `${options.workerId}-container`,
    GPU_CLASS: "RTX-3090-Local-Buffer-1",
    BUFFER_POLL_INTERVAL_SEC: "0.5",
  });
}

/** The original main-tier loop (`unified_worker.py`): heartbeat thread, claim, final report on /progress. */
export function startOriginalMainWorker(options: OriginalWorkerOptions): Promise<OriginalWorkerProcess> {
  return startStandIn("main_worker.py", options, {
    WORKER_ID: options.workerId,
    ORCHESTRATOR_BASE_URL: options.orchestratorUrl,
    WORKER_TYPE: "main",
    PROVIDER: "local",
    GPU_CLASS_NAME: "RTX 4090",
    HEARTBEAT_INTERVAL_SEC: "0.5",
    POLL_INTERVAL_SEC: "0.5",
  });
}

async function startStandIn(script: string, options: OriginalWorkerOptions, defaults: Record<string, string>): Promise<OriginalWorkerProcess> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    PYTHONUNBUFFERED: "1",
    PYTHONDONTWRITEBYTECODE: "1",
    ...defaults,
    INTERNAL_API_KEY: options.internalApiKey,
    FAKE_GENERATE_SECONDS: String(options.generateSeconds ?? 0.5),
    FAKE_GENERATE_OUTCOME: options.outcome ?? "success",
    ...(options.keyHeader ? { STANDIN_KEY_HEADER: options.keyHeader } : {}),
    ...options.env,
  };
  const child = spawn(PYTHON, [script], { cwd: SCRIPTS, env, stdio: ["ignore", "pipe", "pipe"] });
  const events: OriginalEvent[] = [];
  const stderr: string[] = [];
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout }).on("line", (line) => {
    try {
      events.push(JSON.parse(line) as OriginalEvent);
    } catch {
      events.push({ event: "text", line });
    }
    for (const l of listeners) l();
  });
  createInterface({ input: child.stderr }).on("line", (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const l of listeners) l();
  });

  const waitFor: OriginalWorkerProcess["waitFor"] = (event, opts = {}) =>
    new Promise((resolve, reject) => {
      const match = () => events.find((e) => e.event === event && (opts.where?.(e) ?? true));
      const check = () => {
        const found = match();
        if (found) {
          done();
          resolve(found);
        } else if (gone) {
          done();
          reject(new Error(`${script} exited before ${event}:\n${stderr.join("\n")}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${script}: no ${event} within ${opts.timeoutMs ?? 30_000} ms; events:\n${events.map((e) => JSON.stringify(e)).join("\n")}\n${stderr.join("\n")}`));
      }, opts.timeoutMs ?? 30_000);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const signalAndWait = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  const started = { pid: child.pid ?? -1, events: () => [...events], waitFor, exited, kill: () => signalAndWait("SIGKILL"), stop: () => signalAndWait("SIGTERM") };
  await waitFor("generate_listening", { timeoutMs: 15_000 });
  return started;
}
