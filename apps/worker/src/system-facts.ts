import { statfs } from "node:fs/promises";
import os from "node:os";
import type { SystemFacts } from "@fleet/contract";
import { runProcess } from "./util/run-process.js";

export interface GpuFacts {
  name: string;
  memoryMib: number;
  memoryUsedMib: number | null;
  count: number;
}

/** nvidia-smi when the box has one; null on a CPU machine. Never blocks the event loop. */
export async function readGpu(signal: AbortSignal): Promise<GpuFacts | null> {
  const lines: string[] = [];
  const outcome = await runProcess(
    "nvidia-smi",
    ["--query-gpu=name,memory.total,memory.used", "--format=csv,noheader,nounits"],
    { signal, timeoutMs: 10_000, onStdoutLine: (l) => lines.push(l) },
  );
  if (outcome.spawnError || outcome.code !== 0) return null;
  const rows = lines.map((l) => l.split(",").map((c) => c.trim())).filter((r) => r.length >= 2 && r[0]);
  const first = rows[0];
  if (!first?.[0]) return null;
  const used = Number(first[2]);
  return { name: first[0], memoryMib: Number(first[1]) || 0, memoryUsedMib: Number.isFinite(used) ? used : null, count: rows.length };
}

async function freeGb(dir: string): Promise<number | null> {
  try {
    const s = await statfs(dir);
    return Math.round(((s.bavail * s.bsize) / 1024 ** 3) * 100) / 100;
  } catch {
    return null;
  }
}

/**
 * What the heartbeat tells about the box: GPU, free disk under WORK_DIR (outputs and inputs live
 * there), /dev/shm (Docker's 64 MB default is too small for the engine, which then dies without a
 * word; an operator sees it here first).
 */
export async function collectSystemFacts(opts: { workDir: string; gpu: GpuFacts | null }): Promise<SystemFacts> {
  const shm = await statfs("/dev/shm").then((s) => Math.round((s.blocks * s.bsize) / 1024 ** 2)).catch(() => null);
  return {
    gpu_name: opts.gpu?.name ?? null,
    gpu_memory_mib: opts.gpu?.memoryMib ?? null,
    gpu_memory_used_mib: opts.gpu?.memoryUsedMib ?? null,
    gpu_count: opts.gpu?.count ?? 0,
    disk_free_gb: await freeGb(opts.workDir),
    shm_mib: shm,
    hostname: os.hostname(),
    cpu_cores_logical: os.availableParallelism(),
    ram_total_gb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node_version: process.versions.node,
  };
}
