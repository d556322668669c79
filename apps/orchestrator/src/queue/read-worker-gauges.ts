import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

export interface WorkerGaugeRow {
  worker_id: string;
  gpu_class: string | null;
  status: string;
  engine_state: string | null;
  gpu_name: string | null;
  version: string | null;
  online: boolean;
  quarantined: boolean;
  heartbeat_age_sec: number;
  capacity: number;
  running: number;
}

export interface WorkerGauges {
  workers: WorkerGaugeRow[];
  /** Seconds the oldest claimable queued job has waited; null when none waits. */
  oldestQueuedWaitSec: number | null;
}

/**
 * Per-worker liveness as the database judges it, and the oldest claimable job's wait. One row per
 * GPU plus one index-backed min over queued jobs; like readFleetGauges it runs on the gauge
 * refresher's timer, never per scrape.
 */
export async function readWorkerGauges(db: Executor, offlineAfterSec: number): Promise<WorkerGauges> {
  const workers = await queryRows<WorkerGaugeRow>(
    db,
    sql`select w.worker_id, w.gpu_class, w.status, w.engine->>'state' as engine_state, w.system->>'gpu_name' as gpu_name, w.version, w.capacity,
               w.last_heartbeat > now() - make_interval(secs => ${offlineAfterSec}) as online,
               coalesce(w.quarantined_until > now(), false) as quarantined,
               extract(epoch from now() - w.last_heartbeat)::float8 as heartbeat_age_sec,
               (select count(*)::int from buffer_jobs b where b.worker_id = w.worker_id and b.status = 'running') as running
          from buffer_workers w`,
  );
  const [queue] = await queryRows<{ oldest: number | null }>(
    db,
    sql`select extract(epoch from now() - min(greatest(created_at, run_after)))::float8 as oldest
          from jobs where status = 'queued' and run_after <= now()`,
  );
  return { workers, oldestQueuedWaitSec: queue?.oldest ?? null };
}
