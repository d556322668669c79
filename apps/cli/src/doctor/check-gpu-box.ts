import { execFile } from "node:child_process";
import { INFERENCE_PATHS, InferenceHealth, type WorkerView } from "@fleet/contract";
import { request } from "undici";
import type { WorkerBoxConfig } from "../config.js";
import { createFleetClient } from "../fleet-client.js";
import type { GpuBoxLayout } from "../gpu-box/gpu-box-layout.js";
import { checkInference } from "./check-inference.js";
import { checkHeartbeat } from "./check-orchestrator.js";
import { fail, ok, skip } from "./doctor-check.js";
import type { CheckResult } from "./doctor-check.js";

type Gpu = GpuBoxLayout["gpus"][number];

export interface DeviceMemory {
  index: number;
  name: string;
  usedMib: number;
  totalMib: number;
}

/** Every device nvidia-smi sees, or null where there is none (the worker container has no GPU). */
function readDeviceMemory(timeoutMs: number): Promise<DeviceMemory[] | null> {
  return new Promise((resolve) => {
    execFile(
      "nvidia-smi",
      ["--query-gpu=index,name,memory.used,memory.total", "--format=csv,noheader,nounits"],
      { timeout: timeoutMs },
      (err, stdout) => {
        if (err) return resolve(null);
        const rows = stdout
          .split("\n")
          .map((l) => l.split(",").map((c) => c.trim()))
          .filter((r) => r.length >= 4 && /^\d+$/.test(r[0] ?? ""))
          .map((r) => ({ index: Number(r[0]), name: r[1] ?? "", usedMib: Number(r[2]), totalMib: Number(r[3]) }));
        resolve(rows);
      },
    );
  });
}

async function engineHealth(url: string, timeoutMs: number): Promise<InferenceHealth | null> {
  try {
    const res = await request(url, { method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const parsed = InferenceHealth.safeParse(JSON.parse(await res.body.text()));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

const label = (g: Gpu) => `gpu${g.gpu}`;

function memoryCheck(g: Gpu, devices: DeviceMemory[] | null, health: InferenceHealth | null): CheckResult {
  const name = `${label(g)} memory`;
  if (devices !== null) {
    const d = devices.find((x) => x.index === g.gpu);
    if (d === undefined) {
      return fail(name, `nvidia-smi lists no GPU ${g.gpu} (it sees ${devices.map((x) => x.index).join(", ") || "none"})`, "the GPU is missing or fell off the bus: check nvidia-smi on the host and dmesg for Xid errors; regenerate the compose file if the box changed");
    }
    return ok(name, `${d.name}: ${d.usedMib} of ${d.totalMib} MiB used (nvidia-smi)`);
  }
  const gpu = health?.gpu;
  if (health === null || (health.status !== "READY" && health.status !== "BUSY")) return skip(name, "needs a ready engine to report its GPU");
  if (gpu === null || gpu === undefined) return skip(name, "the engine reports no GPU (CPU engine)");
  const total = typeof gpu.memory_total_mib === "number" ? gpu.memory_total_mib : null;
  const allocated = typeof gpu.memory_allocated_mib === "number" ? gpu.memory_allocated_mib : null;
  const gpuName = typeof gpu.name === "string" ? gpu.name : "GPU";
  return ok(name, `${gpuName}: ${allocated ?? "?"} MiB allocated by the engine of ${total ?? "?"} MiB (engine's view)`);
}

/**
 * Every GPU of the box, from inside any one of its worker containers: each worker's heartbeat as
 * the orchestrator saw it, each engine's readiness (all ports are on 127.0.0.1 under host
 * networking) and each device's memory. Each line is named after its GPU, so the failing one is
 * the first thing an operator reads.
 */
export async function checkGpuBox(layout: GpuBoxLayout, cfg: WorkerBoxConfig, timeoutMs: number): Promise<CheckResult[]> {
  let workers: WorkerView[] | null = null;
  let whyNoWorkers = "needs a reachable orchestrator and an accepted key";
  if (cfg.orchestratorUrl !== undefined && cfg.internalApiKey !== undefined) {
    try {
      const client = createFleetClient({ baseUrl: cfg.orchestratorUrl, internalApiKey: cfg.internalApiKey, timeoutMs });
      workers = (await client.call("listWorkers")).workers;
    } catch (err) {
      whyNoWorkers = `the worker list is unavailable (${(err as Error).message})`;
    }
  }
  const devices = await readDeviceMemory(timeoutMs);
  const perGpu = await Promise.all(
    layout.gpus.map(async (g) => {
      const inferenceUrl = `http://127.0.0.1:${g.inference_port}`;
      const [inference, health] = await Promise.all([
        checkInference({ ...cfg, inferenceDriver: "http", inferenceUrl }, timeoutMs),
        engineHealth(inferenceUrl + INFERENCE_PATHS.health, timeoutMs),
      ]);
      const heartbeat = workers === null ? skip("", whyNoWorkers) : checkHeartbeat(g.worker_id, workers);
      const logs = (service: string) => `; this GPU's log: docker compose -f docker/compose.gpu-box.yaml logs ${service}-gpu${g.gpu}`;
      return [
        { ...heartbeat, name: `${label(g)} heartbeat`, ...(heartbeat.fix === undefined ? {} : { fix: heartbeat.fix + logs("worker") }) },
        {
          ...inference,
          name: `${label(g)} inference`,
          detail: `${g.worker_id}'s engine: ${inference.detail}`,
          ...(inference.fix === undefined ? {} : { fix: inference.fix + logs("inference") }),
        },
        memoryCheck(g, devices, health),
      ];
    }),
  );
  return perGpu.flat();
}
