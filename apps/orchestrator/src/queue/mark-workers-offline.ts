import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/**
 * Keeps the operators' query (`select worker_id, last_heartbeat, status from buffer_workers`)
 * true: a worker silent for longer than the window reads `offline`. Conditional and idempotent,
 * so two replicas running it at once do the same harmless thing.
 */
export async function markWorkersOffline(
  db: Executor,
  offlineAfterSec: number,
): Promise<{ worker_id: string; last_heartbeat: string }[]> {
  return queryRows(
    db,
    sql`update buffer_workers set status = 'offline'
         where status <> 'offline' and last_heartbeat < now() - make_interval(secs => ${offlineAfterSec})
     returning worker_id, last_heartbeat`,
  );
}
