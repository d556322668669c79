import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/**
 * The worker an attempt was claimed by. An attempt's worker never changes, so checking it before
 * the report runs cannot race with the report: a token may act only on its own attempts.
 */
export async function findAttemptWorker(db: Executor, bufferJobId: string): Promise<string | null> {
  const [row] = await queryRows<{ worker_id: string }>(db, sql`select worker_id from buffer_jobs where buffer_job_id = ${bufferJobId}`);
  return row?.worker_id ?? null;
}
