/**
 * Load generator for the heartbeat benchmark, run as its own process so its CPU is not the
 * orchestrator's: sends heartbeats at a fixed rate (open loop) for a fixed time and prints one
 * JSON line with what it saw.
 *
 * Latency is measured from the moment each request was *due*, not when it was sent, so a client
 * or server that falls behind shows up as latency (no coordinated omission).
 */
import { performance } from "node:perf_hooks";
import { Pool } from "undici";
import { summarize, type Summary } from "./stats.js";

export interface LoadArgs {
  url: string;
  internalApiKey: string;
  rate: number;
  durationMs: number;
  /** Sent at the same rate before the measured window (fresh sockets, JIT) and not recorded. */
  warmupMs: number;
  workers: number;
  workerPrefix: string;
  connections: number;
}

export interface LoadResult {
  rate: number;
  due: number;
  ok: number;
  errors: number;
  /** Requests still unanswered 10 s after the last one was due (counted as errors too). */
  unanswered: number;
  achievedPerSec: number;
  latency: Summary;
  clientCpuPct: number;
  firstError: string | null;
}

/** What a worker on a GPU box sends every 5 s (docs/wire-protocol.md), so parsing and the upsert do real work. */
function heartbeatBody(i: number): string {
  return JSON.stringify({
    status: "idle",
    gpu_class: "RTX_4090",
    capacity: 1,
    error: null,
    active_jobs: [],
    version: "fleet-worker 0.1.0",
    engine: { driver: "http", state: "ready", detail: "musetalk-v15", lip_sync: true },
    system: { gpu_name: "NVIDIA GeForce RTX 4090", gpu_memory_mib: 24564, disk_free_gb: 812.4, hostname: `gpu-box-${i}` },
  });
}

export async function runLoad(a: LoadArgs): Promise<LoadResult> {
  const pool = new Pool(a.url, { connections: a.connections, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const bodies = Array.from({ length: a.workers }, (_, i) => heartbeatBody(i));
  const paths = Array.from({ length: a.workers }, (_, i) => `/internal/buffer/workers/${a.workerPrefix}-${i}/heartbeat`);
  const headers = { "content-type": "application/json", "x-internal-api-key": a.internalApiKey };
  const warm = Math.round((a.rate * a.warmupMs) / 1000);
  const total = warm + Math.round((a.rate * a.durationMs) / 1000);
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  let answered = 0;
  let firstError: string | null = null;
  let lastDoneAt = 0;
  const start = performance.now() + 50;
  const measuredFrom = start + (warm * 1000) / a.rate;
  let cpu0 = process.cpuUsage();
  let cpuFrom = performance.now();
  let sent = 0;

  const fire = (i: number, dueAt: number) => {
    const w = i % a.workers;
    const measured = i >= warm;
    pool
      .request({ method: "POST", path: paths[w]!, headers, body: bodies[w] })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode === 200) {
          if (!measured) return;
          ok++;
          lastDoneAt = performance.now();
          latencies.push(lastDoneAt - dueAt);
        } else {
          errors++;
          firstError ??= `HTTP ${res.statusCode}`;
        }
      })
      .catch((err: unknown) => {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      })
      .finally(() => answered++);
  };

  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * a.rate) / 1000) + 1);
      while (sent < due) {
        if (sent === warm) {
          cpu0 = process.cpuUsage();
          cpuFrom = performance.now();
        }
        fire(sent, start + (sent * 1000) / a.rate);
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(pump, 1);
    };
    setTimeout(pump, 50);
  });
  const lastDue = start + ((total - 1) * 1000) / a.rate;
  while (answered < total && performance.now() - lastDue < 10_000) await new Promise((r) => setTimeout(r, 20));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - cpuFrom;
  const unanswered = total - answered;
  await pool.destroy();
  return {
    rate: a.rate,
    due: total - warm,
    ok,
    errors: errors + unanswered,
    unanswered,
    // Answered requests over the time it took to answer them: falling behind lowers it.
    achievedPerSec: (ok / Math.max(1, Math.max(lastDue + 1000 / a.rate, lastDoneAt) - measuredFrom)) * 1000,
    latency: summarize(latencies),
    clientCpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    firstError,
  };
}
