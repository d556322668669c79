import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

export interface KeyOwner {
  client_id: string;
  bootstrap: boolean;
}

/**
 * The client of an unrevoked key, stamping `last_used_at` on the way: the credential cache calls
 * this once per key and cache period, so the write costs one row update every few seconds.
 */
export async function findClientByKey(db: Executor, keyHash: string): Promise<KeyOwner | null> {
  const [row] = await queryRows<KeyOwner>(
    db,
    sql`update api_keys k set last_used_at = now()
          from clients c
         where k.key_hash = ${keyHash} and k.revoked_at is null and c.id = k.client_id
     returning k.client_id, c.bootstrap`,
  );
  return row ?? null;
}
