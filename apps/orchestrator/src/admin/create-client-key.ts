import { randomBytes } from "node:crypto";
import { API_KEY_PREFIX } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { generateCredential, hashCredential } from "../auth/credential-hash.js";
import { queryRows, type Executor } from "../db/client.js";
import { API_KEY_COLUMNS, type ApiKeyRow } from "./api-key-row.js";

/**
 * A new client with one key and its own webhook secret, in one statement (no client without a
 * key if the request dies half way). The key is returned here and stored only as its hash.
 */
export async function createClientKey(db: Executor, name: string): Promise<{ key: string; webhookSecret: string; row: ApiKeyRow }> {
  const credential = generateCredential(API_KEY_PREFIX);
  const webhookSecret = `whsec_${randomBytes(32).toString("base64url")}`;
  const [row] = await queryRows<ApiKeyRow>(
    db,
    sql`with c as (insert into clients (name, webhook_secret) values (${name}, ${webhookSecret}) returning *),
             k as (insert into api_keys (client_id, prefix, key_hash)
                   select id, ${credential.prefix}, ${hashCredential(credential.value)} from c returning *)
        select ${API_KEY_COLUMNS} from k join c on c.id = k.client_id`,
  );
  if (!row) throw new Error("creating the client returned no row");
  return { key: credential.value, webhookSecret, row };
}
