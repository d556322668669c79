import { index, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { clients } from "./clients.js";
import { timestamptz } from "./columns.js";

/**
 * Public API keys, stored as sha256 of the key only: generated keys carry 256 random bits, so a
 * slow password hash would add nothing but latency on every request. `prefix` identifies a key in
 * `fleet keys list` and is never enough to authenticate.
 */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    clientId: uuid("client_id")
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    prefix: text("prefix").notNull(),
    keyHash: text("key_hash").notNull().unique("api_keys_key_hash_unique"),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    revokedAt: timestamptz("revoked_at"),
    lastUsedAt: timestamptz("last_used_at"),
  },
  (t) => [uniqueIndex("api_keys_prefix_idx").on(t.prefix), index("api_keys_client_id_idx").on(t.clientId)],
);
