import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/**
 * Operator drain flag. The worker learns it from its next heartbeat reply (`drain: true`) and
 * claims refuse it at once; what it runs keeps its lease until it finishes or releases.
 */
export async function setWorkerDrain(db: Executor, workerId: string, drain: boolean): Promise<boolean> {
  const rows = await queryRows<{ worker_id: string }>(
    db,
    sql`update buffer_workers set drain_requested = ${drain} where worker_id = ${workerId} returning worker_id`,
  );
  return rows.length > 0;
}
