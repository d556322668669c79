import { ConfigSchema } from "@fleet/orchestrator";
import { startOrchestratorProcess, type OrchestratorProcess } from "@fleet/testing/orchestrator-process";

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
