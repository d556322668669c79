import type { WorkerProtocol, WorkerStatus, WorkerTier, WorkerView } from "@fleet/contract";
import { toIso, toIsoOrNull } from "./timestamps.js";

/** A `buffer_workers` row plus what list-workers computes beside it. */
export interface WorkerRow {
  worker_id: string;
  status: WorkerStatus;
  tier: WorkerTier;
  protocol: WorkerProtocol;
  gpu_class: string | null;
  capacity: number;
  error: string | null;
  last_heartbeat: string;
  first_seen: string;
  version: string | null;
  system: Record<string, unknown> | null;
  engine: Record<string, unknown> | null;
  drain_requested: boolean;
  consecutive_failures: number;
  quarantined_until: string | null;
  online: boolean;
  heartbeat_age_sec: number;
  running: { buffer_job_id: string; job_id: string; claimed_at: string; lease_expires_at: string }[] | null;
}

export function toWorkerView(row: WorkerRow): WorkerView {
  return {
    worker_id: row.worker_id,
    status: row.status,
    tier: row.tier,
    protocol: row.protocol,
    online: row.online,
    heartbeat_age_sec: Math.round(Number(row.heartbeat_age_sec) * 10) / 10,
    last_heartbeat: toIso(row.last_heartbeat),
    first_seen: toIso(row.first_seen),
    gpu_class: row.gpu_class,
    capacity: row.capacity,
    error: row.error,
    version: row.version,
    system: row.system,
    engine: row.engine,
    drain_requested: row.drain_requested,
    consecutive_failures: row.consecutive_failures,
    quarantined_until: toIsoOrNull(row.quarantined_until),
    running: (row.running ?? []).map((r) => ({
      buffer_job_id: r.buffer_job_id,
      job_id: r.job_id,
      claimed_at: toIso(r.claimed_at),
      lease_expires_at: toIso(r.lease_expires_at),
    })),
  };
}
