import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Executor } from "../db/client.js";
import { hashCredential, prefixOfChosenKey } from "./credential-hash.js";

/**
 * A client id that follows from the key alone, so every replica starting at once, and every
 * restart, lands on the same row instead of racing to create one each (a UUID version 8).
 */
function bootstrapClientId(keyHash: string): string {
  const h = createHash("sha256").update(`fleet bootstrap client\n${keyHash}`).digest("hex");
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Makes each PUBLIC_API_KEYS entry a client with that one key, once (idempotent: start it again
 * and nothing changes). A key already known is left alone, so a key revoked with `fleet keys
 * revoke` stays revoked even while it is still listed in the environment. Bootstrap clients sign
 * webhooks with WEBHOOK_SECRET, as every delivery was signed before clients existed.
 */
export async function bootstrapClients(db: Executor, publicApiKeys: readonly string[]): Promise<void> {
  for (const key of publicApiKeys) {
    const keyHash = hashCredential(key);
    const clientId = bootstrapClientId(keyHash);
    const prefix = prefixOfChosenKey(keyHash);
    await db.execute(
      sql`insert into clients (id, name, bootstrap)
          select ${clientId}, ${`PUBLIC_API_KEYS ${prefix}`}, true
           where not exists (select 1 from api_keys where key_hash = ${keyHash})
          on conflict (id) do nothing`,
    );
    await db.execute(
      sql`insert into api_keys (client_id, prefix, key_hash)
          select ${clientId}, ${prefix}, ${keyHash}
           where exists (select 1 from clients where id = ${clientId})
          on conflict do nothing`,
    );
  }
}
