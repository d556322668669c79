import { sql } from "drizzle-orm";
import { boolean, check, index, integer, jsonb, pgTable, text } from "drizzle-orm/pg-core";
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
    /** buffer | main | transient | expensive: buffer workers take what the preferred tiers leave. */
    tier: text("tier").notNull().default("buffer"),
    /** `original` when its last heartbeat came without active_jobs and version (the Python workers). */
    protocol: text("protocol").notNull().default("fleet"),
  },
  (t) => [
    check("buffer_workers_status_check", sql`${t.status} in ('idle', 'busy', 'draining', 'error', 'offline')`),
    check("buffer_workers_capacity_check", sql`${t.capacity} >= 1`),
    check("buffer_workers_tier_check", sql`${t.tier} in ('buffer', 'main', 'transient', 'expensive')`),
    check("buffer_workers_protocol_check", sql`${t.protocol} in ('fleet', 'original')`),
    // The claim asks "is any preferred-tier worker online?" on every buffer claim; with a
    // buffer-only fleet this index is empty, so the question costs one probe.
    index("buffer_workers_preferred_tier_idx").on(t.lastHeartbeat).where(sql`${t.tier} <> 'buffer'`),
  ],
);
