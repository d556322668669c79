import { index, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { timestamptz } from "./columns.js";

/**
 * Per-worker credentials (`fleet workers enroll`), stored as sha256 of the token only. Not a
 * foreign key to buffer_workers: a box is enrolled before its first heartbeat creates that row.
 */
export const workerTokens = pgTable(
  "worker_tokens",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    workerId: text("worker_id").notNull(),
    prefix: text("prefix").notNull(),
    tokenHash: text("token_hash").notNull().unique("worker_tokens_token_hash_unique"),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    revokedAt: timestamptz("revoked_at"),
    lastUsedAt: timestamptz("last_used_at"),
  },
  (t) => [uniqueIndex("worker_tokens_prefix_idx").on(t.prefix), index("worker_tokens_worker_id_idx").on(t.workerId)],
);
