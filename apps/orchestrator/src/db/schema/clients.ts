import { boolean, pgTable, text, uuid } from "drizzle-orm/pg-core";
import { timestamptz } from "./columns.js";

/**
 * A tenant of the public API: its jobs, its idempotency keys and its webhook secret are its own.
 * `webhook_secret` is null for clients that sign with WEBHOOK_SECRET (bootstrap clients from
 * PUBLIC_API_KEYS, and the internal client), so receivers set up before clients existed keep
 * verifying. `bootstrap` clients also keep reading the jobs created before clients existed.
 */
export const clients = pgTable("clients", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  webhookSecret: text("webhook_secret"),
  bootstrap: boolean("bootstrap").notNull().default(false),
  createdAt: timestamptz("created_at").notNull().defaultNow(),
});
