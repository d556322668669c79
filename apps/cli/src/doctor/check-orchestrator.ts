import type { WorkerView } from "@fleet/contract";
import type { WorkerBoxConfig } from "../config.js";
import { FleetApiError, FleetConnectionError } from "../fleet-api-error.js";
import { createFleetClient } from "../fleet-client.js";
import { formatDuration } from "../format/duration.js";
import { fail, ok, skip } from "./doctor-check.js";
import type { CheckResult } from "./doctor-check.js";

const CHECK_REACHABLE = "orchestrator reachable";
const CHECK_KEY = "key accepted";
export const CHECK_HEARTBEAT = "heartbeat fresh";

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * The field note's three manual checks, in order: can this box reach the orchestrator, does the
 * orchestrator accept its key, and has a heartbeat from this worker id arrived recently. Each
 * later check is skipped when an earlier one failed, so the first ✗ is the cause.
 */
export async function checkOrchestrator(cfg: WorkerBoxConfig, timeoutMs: number): Promise<CheckResult[]> {
  const url = cfg.orchestratorUrl;
  if (url === undefined) {
    return [
      fail(CHECK_REACHABLE, "BUFFER_ORCHESTRATOR_BASE_URL (or ORCHESTRATOR_BASE_URL) is not set", "set BUFFER_ORCHESTRATOR_BASE_URL to the orchestrator's public URL, e.g. https://api.example.com"),
      skip(CHECK_KEY, "needs a reachable orchestrator"),
      skip(CHECK_HEARTBEAT, "needs a reachable orchestrator"),
    ];
  }
  const client = createFleetClient({ baseUrl: url, internalApiKey: cfg.internalApiKey, timeoutMs });
  const results: CheckResult[] = [];
  try {
    await client.call("healthz");
    results.push(ok(CHECK_REACHABLE, `${url}/healthz answered ok`));
  } catch (err) {
    const inContainer = isLoopback(url)
      ? "; inside a container, localhost is the container itself unless it runs with --network host"
      : "";
    const detail = err instanceof FleetConnectionError ? err.message : `${url}/healthz: ${(err as Error).message}`;
    results.push(
      fail(CHECK_REACHABLE, detail, `check BUFFER_ORCHESTRATOR_BASE_URL and that the orchestrator runs: curl ${url}/healthz should print {"status":"ok"}${inContainer}`),
      skip(CHECK_KEY, "needs a reachable orchestrator"),
      skip(CHECK_HEARTBEAT, "needs a reachable orchestrator"),
    );
    return results;
  }
  if (cfg.internalApiKey === undefined && cfg.workerToken !== undefined) {
    // A worker token opens only the worker's own heartbeat/claim/report routes: checking it here
    // would write a heartbeat and fake liveness, and reading the worker list needs the shared key.
    results.push(
      skip(CHECK_KEY, "this box uses WORKER_TOKEN; the orchestrator checks it on every heartbeat (the worker logs buffer_worker_heartbeat_ok, or a 401/403 buffer_worker_loop_error)"),
      skip(CHECK_HEARTBEAT, "reading the worker list needs INTERNAL_API_KEY: pass --internal-key from an operator's machine, or run fleet workers there"),
    );
    return results;
  }
  if (cfg.internalApiKey === undefined) {
    results.push(
      fail(CHECK_KEY, "neither WORKER_TOKEN nor INTERNAL_API_KEY is set", "set WORKER_TOKEN from `fleet workers enroll WORKER_ID` (or INTERNAL_API_KEY, the shared key, to the value in the orchestrator's .env)"),
      skip(CHECK_HEARTBEAT, "needs an accepted key"),
    );
    return results;
  }
  let workers: WorkerView[];
  try {
    // A read-only call: checking the key must not itself write a heartbeat and fake liveness.
    workers = (await client.call("listWorkers")).workers;
    results.push(ok(CHECK_KEY, "GET /internal/buffer/workers accepted INTERNAL_API_KEY"));
  } catch (err) {
    if (err instanceof FleetApiError && err.status === 401) {
      results.push(
        fail(CHECK_KEY, `the orchestrator refused INTERNAL_API_KEY (${err.describe()})`, "copy INTERNAL_API_KEY from the orchestrator's .env; they must match exactly (no quotes, no trailing spaces)"),
      );
    } else {
      results.push(fail(CHECK_KEY, (err as Error).message, "see the orchestrator's logs for this request id"));
    }
    results.push(skip(CHECK_HEARTBEAT, "needs an accepted key"));
    return results;
  }
  results.push(checkHeartbeat(cfg.workerId, workers));
  return results;
}

export function checkHeartbeat(workerId: string | undefined, workers: readonly WorkerView[]): CheckResult {
  if (workerId === undefined) {
    return fail(CHECK_HEARTBEAT, "BUFFER_WORKER_ID is not set, so the worker's buffer loop never starts", "set BUFFER_WORKER_ID (e.g. buffer-orch-local-2) or WORKER_MODE=buffer, then restart the worker; its log shows buffer_worker_loop_starting");
  }
  const w = workers.find((x) => x.worker_id === workerId);
  if (w === undefined) {
    return fail(CHECK_HEARTBEAT, `no heartbeat from ${workerId} has ever reached the orchestrator`, "start the worker and read its log: docker logs <container> 2>&1 | grep buffer_worker (want buffer_worker_loop_starting, no buffer_worker_loop_error)");
  }
  const age = w.heartbeat_age_sec === null ? "never" : `${formatDuration(w.heartbeat_age_sec)} ago`;
  if (!w.online) {
    return fail(CHECK_HEARTBEAT, `${workerId} is offline: last heartbeat ${age} (status ${w.status})`, "the worker stopped heartbeating: grep buffer_worker_loop_error in its log for the status code, fix the cause, restart it");
  }
  const notes = [
    w.drain_requested ? "drain requested (fleet undrain to resume)" : null,
    w.quarantined_until !== null && Date.parse(w.quarantined_until) > Date.now() ? `quarantined until ${w.quarantined_until}` : null,
  ].filter((n) => n !== null);
  return ok(CHECK_HEARTBEAT, `${workerId} online, status ${w.status}, last heartbeat ${age}${notes.length > 0 ? `; ${notes.join("; ")}` : ""}`);
}
