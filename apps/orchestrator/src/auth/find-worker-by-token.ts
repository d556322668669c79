import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/** The worker id of an unrevoked token (stamping `last_used_at`, as findClientByKey does). */
export async function findWorkerByToken(db: Executor, tokenHash: string): Promise<string | null> {
  const [row] = await queryRows<{ worker_id: string }>(
    db,
    sql`update worker_tokens set last_used_at = now()
         where token_hash = ${tokenHash} and revoked_at is null
     returning worker_id`,
  );
  return row?.worker_id ?? null;
}
