import type { ClaimRefusal } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { queryPrepared, type Executor } from "../db/client.js";

/**
 * Says why a claim returned nothing, in the order a worker can act on. Runs only after an empty
 * claim: one primary-key read plus a count over the worker's running attempts (a handful of rows).
 */
export async function findClaimRefusal(db: Executor, workerId: string, offlineAfterSec: number): Promise<ClaimRefusal> {
  const [row] = await queryPrepared<{
    fresh: boolean;
    draining: boolean;
    quarantined: boolean;
    running: number;
    capacity: number;
  }>(
    db,
    "fleet_find_claim_refusal",
    sql`select w.last_heartbeat > now() - make_interval(secs => ${offlineAfterSec}) as fresh,
               (w.status = 'draining' or w.drain_requested) as draining,
               coalesce(w.quarantined_until > now(), false) as quarantined,
               (select count(*)::int from buffer_jobs b where b.worker_id = w.worker_id and b.status = 'running') as running,
               w.capacity
          from buffer_workers w
         where w.worker_id = ${workerId}`,
  );
  if (!row) return "unknown_worker";
  if (!row.fresh) return "worker_offline";
  if (row.draining) return "worker_draining";
  if (row.quarantined) return "worker_quarantined";
  if (row.running >= row.capacity) return "at_capacity";
  return "no_job";
}
