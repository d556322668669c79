import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import type { WorkerRow } from "../views/worker-view.js";

/**
 * Workers with liveness computed by the database clock (the one every replica shares). An original
 * buffer worker running a job is silent until it ends: while its attempt's lease lives, it is online.
 */
export async function listWorkers(db: Executor, offlineAfterSec: number, workerId?: string): Promise<WorkerRow[]> {
  const only = workerId === undefined ? sql`true` : sql`w.worker_id = ${workerId}`;
  return queryRows<WorkerRow>(
    db,
    sql`select w.*,
               (w.last_heartbeat > now() - make_interval(secs => ${offlineAfterSec})
                or exists (select 1 from buffer_jobs l where l.worker_id = w.worker_id and l.status = 'running'
                                                        and l.legacy_lease and l.lease_expires_at > now())) as online,
               extract(epoch from now() - w.last_heartbeat)::float8 as heartbeat_age_sec,
               (select json_agg(json_build_object('buffer_job_id', b.buffer_job_id, 'job_id', b.job_id,
                                                  'claimed_at', b.claimed_at, 'lease_expires_at', b.lease_expires_at)
                                order by b.claimed_at)
                  from buffer_jobs b where b.worker_id = w.worker_id and b.status = 'running') as running
          from buffer_workers w
         where ${only}
         order by w.last_heartbeat desc`,
  );
}
