import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigSchema } from "@fleet/orchestrator";
import { startOrchestratorProcess, type OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { readProfileDir, summarizeProfile, type ProfileSummary } from "./cpu-profile.js";

/**
 * The orchestrator's own defaults for the timing settings. startOrchestratorProcess shortens them
 * for tests; a benchmark must measure what an operator gets, so they are read back from the
 * config schema (not copied here, where they could drift) and passed explicitly.
 */
export function productionTimings(): Record<string, string> {
  const defaults = ConfigSchema.parse({ INTERNAL_API_KEY: "defaults-only" });
  return {
    WORKER_OFFLINE_AFTER_SEC: String(defaults.WORKER_OFFLINE_AFTER_SEC),
    LEASE_TTL_SEC: String(defaults.LEASE_TTL_SEC),
    HEARTBEAT_INTERVAL_SEC: String(defaults.HEARTBEAT_INTERVAL_SEC),
    REAPER_INTERVAL_SEC: String(defaults.REAPER_INTERVAL_SEC),
    RETRY_BACKOFF_BASE_SEC: String(defaults.RETRY_BACKOFF_BASE_SEC),
    DATABASE_POOL_MAX: String(defaults.DATABASE_POOL_MAX),
    LOG_LEVEL: defaults.LOG_LEVEL,
  };
}

/** The built orchestrator (apps/orchestrator/dist/main.js) as a child process, on 127.0.0.1:0. */
export function startFleetOrchestrator(databaseUrl: string, env: Record<string, string> = {}): Promise<OrchestratorProcess> {
  return startOrchestratorProcess({
    databaseUrl,
    env: { ...productionTimings(), HOST: "127.0.0.1", ALLOW_PRIVATE_NETWORK_URLS: "true", ...env },
  });
}

/** Error-level lines the orchestrator logged (500s and the like), counted by message and cause. */
export function orchestratorErrors(proc: OrchestratorProcess): { what: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const r of proc.logRecords()) {
    if (r.level !== "error" && r.level !== "fatal") continue;
    const err = r.err as { message?: string; code?: string } | undefined;
    const message = err?.message?.replace(/\s+/g, " ");
    // drizzle wraps the driver's error as "Failed query: <sql> params: …: <cause>"; the cause is what matters.
    const cause = message && /^Failed query:/.test(message) ? `Failed query (…): ${message.slice(message.lastIndexOf(": ") + 2)}` : message;
    const key = `${String(r.msg)}${cause ? `: ${cause.slice(0, 200)}` : ""}${err?.code ? ` (${err.code})` : ""}${typeof r.url === "string" ? ` on ${r.url}` : ""}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([what, count]) => ({ what, count })).sort((a, b) => b.count - a.count);
}

/**
 * The orchestrator under `node --cpu-prof`, for the benchmarks that explain a number: `finish()`
 * stops it (the profile is written on exit) and summarizes where its CPU went.
 */
export async function startProfiledOrchestrator(databaseUrl: string, env: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), "fleet-bench-prof-"));
  const proc = await startFleetOrchestrator(databaseUrl, { ...env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` });
  return {
    proc,
    async finish(): Promise<ProfileSummary> {
      try {
        await proc.stop();
        return summarizeProfile(await readProfileDir(dir));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async abandon(): Promise<void> {
      await proc.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
