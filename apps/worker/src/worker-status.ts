import type { AvatarCacheStats } from "@fleet/contract";
import type { EngineMonitor } from "./engine-monitor.js";
import type { HeartbeatLoop } from "./heartbeat-loop.js";
import type { JobRunner } from "./job-runner.js";
import type { Metrics } from "./metrics.js";
import type { Outbox } from "./outbox.js";

/** The live parts both views read; nothing is copied, so neither can go stale. */
export interface WorkerStateSources {
  workerId: string;
  version: string;
  /** "running", or why the buffer loop is off. */
  bufferLoop: string;
  driverName: string;
  runner: JobRunner;
  outbox: Outbox | null;
  monitor: EngineMonitor;
  heartbeat: () => HeartbeatLoop | null;
  draining: () => boolean;
}

/**
 * GET /healthz: the age of the last accepted heartbeat, engine and storage state, jobs, outbox.
 * The buffer_job_ids held are fencing tokens (whoever knows one can report for that attempt with
 * the internal key), so only a `privileged` caller sees them; everyone else sees how many.
 */
export function describeWorkerHealth(src: WorkerStateSources, opts: { privileged: boolean }): Record<string, unknown> {
  const hb = src.heartbeat()?.snapshot() ?? null;
  const readiness = src.monitor.current();
  return {
    status: src.bufferLoop !== "running" || hb?.healthy ? "ok" : "degraded",
    worker_id: src.workerId,
    version: src.version,
    buffer_loop: src.bufferLoop,
    heartbeat: hb && {
      healthy: hb.healthy,
      last_accepted_at: hb.lastAcceptedAt ? new Date(hb.lastAcceptedAt).toISOString() : null,
      age_sec: hb.lastAcceptedAt ? (Date.now() - hb.lastAcceptedAt) / 1000 : null,
      consecutive_failures: hb.consecutiveFailures,
      last_error: hb.lastError,
    },
    engine: readiness.engine,
    // The wire shape predates `state`: `ready` plus a detail that says when no check answered yet.
    storage: {
      kind: readiness.storage.kind,
      ready: readiness.storage.state === "ready",
      detail: readiness.storage.state === "unchecked" ? "not checked yet" : readiness.storage.detail,
    },
    jobs: {
      running: src.runner.running(),
      capacity: src.runner.capacity,
      held_count: src.runner.heldBufferJobIds().length,
      ...(opts.privileged ? { held: src.runner.heldBufferJobIds() } : {}),
    },
    draining: src.draining(),
    outbox_pending: src.outbox?.pendingIds().length ?? 0,
  };
}

/** The same state as Prometheus gauges, read at scrape time. */
export function registerWorkerGauges(metrics: Metrics, src: WorkerStateSources): void {
  const { runner, outbox, monitor, driverName } = src;
  metrics.gauge("fleet_worker_jobs_running", "Jobs running now.", () => runner.running());
  metrics.gauge("fleet_worker_capacity", "BUFFER_CAPACITY.", () => runner.capacity);
  metrics.gauge("fleet_worker_outbox_pending", "Terminal reports not yet acknowledged.", () => outbox?.pendingIds().length ?? 0);
  metrics.gauge("fleet_worker_draining", "1 while draining.", () => (src.draining() ? 1 : 0));
  metrics.gauge("fleet_worker_heartbeat_healthy", "1 when the last heartbeat was accepted.", () => (src.heartbeat()?.snapshot().healthy ? 1 : 0));
  metrics.gauge("fleet_worker_heartbeat_age_seconds", "Seconds since the orchestrator last accepted a heartbeat.", () => {
    const at = src.heartbeat()?.snapshot().lastAcceptedAt;
    return at ? (Date.now() - at) / 1000 : NaN;
  });
  metrics.gauge("fleet_worker_engine_ready", "1 when the inference engine is ready.", () => [
    { labels: { driver: driverName }, value: monitor.current().engine.state === "ready" ? 1 : 0 },
  ]);
  // The engine's prepared-avatar cache, from its last health check; absent (no series) without one.
  const cache = (pick: (c: AvatarCacheStats) => number | null) => () => {
    const stats = monitor.current().engine.avatar_cache;
    return [{ labels: { driver: driverName }, value: stats ? (pick(stats) ?? NaN) : NaN }];
  };
  metrics.gauge("fleet_worker_engine_avatar_cache_bytes", "Bytes of prepared avatars the engine keeps.", cache((c) => c.bytes));
  metrics.gauge("fleet_worker_engine_avatar_cache_max_bytes", "The engine's bound on its prepared avatars (INFERENCE_AVATAR_CACHE_MAX_BYTES).", cache((c) => c.max_bytes));
  metrics.gauge("fleet_worker_engine_avatar_cache_entries", "Prepared avatars the engine keeps.", cache((c) => c.entries));
  metrics.gauge("fleet_worker_engine_avatar_cache_hit_ratio", "Share of the engine's avatar lookups that skipped preparation, since the engine started.", cache((c) => c.hit_rate));
  metrics.gauge("fleet_worker_engine_avatar_cache_hits", "Avatar lookups that skipped preparation, since the engine started.", cache((c) => c.hits));
  metrics.gauge("fleet_worker_engine_avatar_cache_misses", "Avatar lookups that prepared the avatar, since the engine started.", cache((c) => c.misses));
  metrics.gauge("fleet_worker_engine_lip_sync", "0 for engines that make video without lip movement (the ffmpeg development engine).", () => [
    { labels: { driver: driverName }, value: driverName === "ffmpeg" || monitor.current().engine.lip_sync === false ? 0 : 1 },
  ]);
}
