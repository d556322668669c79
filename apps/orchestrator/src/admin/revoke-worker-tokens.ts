import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import type { WorkerTokenRow } from "./worker-token-row.js";

/** Revokes a worker's unrevoked tokens: all of them, or the one with `prefix`. Returns what it revoked. */
export async function revokeWorkerTokens(db: Executor, workerId: string, prefix?: string): Promise<WorkerTokenRow[]> {
  return queryRows<WorkerTokenRow>(
    db,
    sql`update worker_tokens set revoked_at = now()
         where worker_id = ${workerId} and revoked_at is null and (${prefix ?? null}::text is null or prefix = ${prefix ?? null})
     returning id, worker_id, prefix, created_at, revoked_at, last_used_at`,
  );
}
