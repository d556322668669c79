import { sql } from "drizzle-orm";
import { boolean, check, integer, jsonb, pgTable, text } from "drizzle-orm/pg-core";
import { timestamptz } from "./columns.js";

/**
 * One row per GPU worker, auto-registered by its first heartbeat. The table and column names are
 * the original's: operators run `SELECT worker_id, last_heartbeat, status FROM buffer_workers
 * ORDER BY last_heartbeat DESC;` and the reaper keeps `status` true for them (`offline`).
 */
export const bufferWorkers = pgTable(
  "buffer_workers",
  {
    workerId: text("worker_id").primaryKey(),
    status: text("status").notNull(),
    gpuClass: text("gpu_class"),
    capacity: integer("capacity").notNull().default(1),
    error: text("error"),
    lastHeartbeat: timestamptz("last_heartbeat").notNull().defaultNow(),
    firstSeen: timestamptz("first_seen").notNull().defaultNow(),
    version: text("version"),
    system: jsonb("system"),
    engine: jsonb("engine"),
    drainRequested: boolean("drain_requested").notNull().default(false),
    consecutiveFailures: integer("consecutive_failures").notNull().default(0),
    quarantinedUntil: timestamptz("quarantined_until"),
  },
  (t) => [
    check("buffer_workers_status_check", sql`${t.status} in ('idle', 'busy', 'draining', 'error', 'offline')`),
    check("buffer_workers_capacity_check", sql`${t.capacity} >= 1`),
  ],
);

export type DbBufferWorker = typeof bufferWorkers.$inferSelect;
