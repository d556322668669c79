import { formatLabels } from "./metrics.js";
import type { WorkerGaugeRow, WorkerGauges } from "./queue/read-worker-gauges.js";

/**
 * Per-worker gauges as the orchestrator sees them (buffer_workers, judged by the database clock),
 * and the age of the oldest claimable job. A worker that is down cannot report itself down: its
 * own /metrics vanishes with it, so "offline" must come from here. Labels are the worker id and
 * its GPU class, bounded by the fleet's size; job ids never become labels. The rows are read by
 * the gauge refresher (queue/read-worker-gauges.ts); rendering them costs a scrape no query.
 */
export function renderFleetGauges({ workers, oldestQueuedWaitSec }: WorkerGauges): string {
  const series: Array<[name: string, help: string, value: (w: WorkerGaugeRow) => number]> = [
    ["fleet_buffer_worker_online", "1 while the worker's last heartbeat is within WORKER_OFFLINE_AFTER_SEC.", (w) => (w.online ? 1 : 0)],
    ["fleet_buffer_worker_heartbeat_age_seconds", "Seconds since the worker's last accepted heartbeat.", (w) => Number(w.heartbeat_age_sec)],
    ["fleet_buffer_worker_quarantined", "1 while the worker is quarantined after repeated failures.", (w) => (w.quarantined ? 1 : 0)],
    ["fleet_buffer_worker_engine_ready", "1 when the worker's last heartbeat said its inference engine was ready.", (w) => (w.engine_state === "ready" ? 1 : 0)],
    ["fleet_buffer_worker_running_attempts", "Attempts the worker holds a lease on.", (w) => Number(w.running)],
    ["fleet_buffer_worker_capacity", "Jobs the worker runs at once (BUFFER_CAPACITY).", (w) => Number(w.capacity)],
  ];
  const lines: string[] = [];
  for (const [name, help, value] of series) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const w of workers) lines.push(`${name}${formatLabels(["worker_id", "gpu_class"], [w.worker_id, w.gpu_class ?? "unknown"])} ${value(w)}`);
  }
  // The fleet table's text columns: one series per worker whose labels carry them, value 1.
  lines.push("# HELP fleet_buffer_worker_info The worker's reported status, engine state, GPU model and version.", "# TYPE fleet_buffer_worker_info gauge");
  for (const w of workers) {
    lines.push(
      `fleet_buffer_worker_info${formatLabels(
        ["worker_id", "gpu_class", "status", "engine_state", "gpu", "version"],
        [w.worker_id, w.gpu_class ?? "unknown", w.status, w.engine_state ?? "unknown", w.gpu_name ?? "unknown", w.version ?? "unknown"],
      )} 1`,
    );
  }
  lines.push(
    "# HELP fleet_queue_oldest_wait_seconds Seconds the oldest claimable queued job has waited (0 when none waits).",
    "# TYPE fleet_queue_oldest_wait_seconds gauge",
    `fleet_queue_oldest_wait_seconds ${Number(oldestQueuedWaitSec ?? 0)}`,
  );
  return lines.join("\n");
}
