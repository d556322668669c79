import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/**
 * Keeps the operators' query (`select worker_id, last_heartbeat, status from buffer_workers`)
 * true: a worker silent for longer than the window reads `offline` — unless it is an original
 * buffer worker running a job, which sends nothing until the job ends: while that attempt's
 * (legacy) lease lives, the worker reads `busy`, and once the lease is gone it reads `offline` like
 * any silent worker. Conditional and idempotent, so two replicas running it at once do the same
 * harmless thing.
 */
export async function markWorkersOffline(
  db: Executor,
  offlineAfterSec: number,
): Promise<{ worker_id: string; last_heartbeat: string; status: "offline" | "busy" }[]> {
  return queryRows(
    db,
    sql`with silent as (
          select w.worker_id,
                 case when exists (select 1 from buffer_jobs l
                                    where l.worker_id = w.worker_id and l.status = 'running'
                                      and l.legacy_lease and l.lease_expires_at > now())
                      then 'busy' else 'offline' end as status
            from buffer_workers w
           where w.last_heartbeat < now() - make_interval(secs => ${offlineAfterSec})
        )
        update buffer_workers w set status = s.status
          from silent s
         where w.worker_id = s.worker_id and w.status <> s.status
     returning w.worker_id, w.last_heartbeat, w.status`,
  );
}
