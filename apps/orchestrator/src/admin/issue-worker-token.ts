import { WORKER_TOKEN_PREFIX } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { generateCredential, hashCredential } from "../auth/credential-hash.js";
import { queryRows, type Executor } from "../db/client.js";
import type { WorkerTokenRow } from "./worker-token-row.js";

/**
 * A new token for one worker id, stored as its hash. Earlier tokens stay valid until revoked, so
 * a box can be given its new token before the old one stops working (rotation without downtime).
 */
export async function issueWorkerToken(db: Executor, workerId: string): Promise<{ token: string; row: WorkerTokenRow }> {
  const credential = generateCredential(WORKER_TOKEN_PREFIX);
  const [row] = await queryRows<WorkerTokenRow>(
    db,
    sql`insert into worker_tokens (worker_id, prefix, token_hash)
        values (${workerId}, ${credential.prefix}, ${hashCredential(credential.value)})
     returning id, worker_id, prefix, created_at, revoked_at, last_used_at`,
  );
  if (!row) throw new Error("issuing the worker token returned no row");
  return { token: credential.value, row };
}
