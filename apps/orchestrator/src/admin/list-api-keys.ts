import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import { API_KEY_COLUMNS, type ApiKeyRow } from "./api-key-row.js";

/** Every key, oldest first; a handful per deployment, so no paging. */
export async function listApiKeys(db: Executor): Promise<ApiKeyRow[]> {
  return queryRows<ApiKeyRow>(
    db,
    sql`select ${API_KEY_COLUMNS} from api_keys k join clients c on c.id = k.client_id order by k.created_at, k.id`,
  );
}
