import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import { API_KEY_COLUMNS, type ApiKeyRow } from "./api-key-row.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Revokes one key by its prefix (unique) or id. Revoking again keeps the first revocation time,
 * so a retried command changes nothing. Null when no key matches.
 */
export async function revokeApiKey(db: Executor, ref: string): Promise<ApiKeyRow | null> {
  const match = UUID.test(ref) ? sql`k.id = ${ref}::uuid` : sql`k.prefix = ${ref}`;
  const [row] = await queryRows<ApiKeyRow>(
    db,
    sql`with k as (update api_keys k set revoked_at = coalesce(k.revoked_at, now()) where ${match} returning k.*)
        select ${API_KEY_COLUMNS} from k join clients c on c.id = k.client_id`,
  );
  return row ?? null;
}
