import { sql } from "drizzle-orm";
import { boolean, check, index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { timestamptz } from "./columns.js";
import { jobs } from "./jobs.js";

/**
 * One row per attempt (= lease). `buffer_job_id` is the fencing token: a requeued job gets a new
 * one, so a late report from the old holder is refused by id alone, even from original workers
 * that send no worker id on /status.
 */
export const bufferJobs = pgTable(
  "buffer_jobs",
  {
    bufferJobId: uuid("buffer_job_id").primaryKey().defaultRandom(),
    jobId: uuid("job_id")
      .notNull()
      .references(() => jobs.id, { onDelete: "cascade" }),
    workerId: text("worker_id").notNull(),
    status: text("status").notNull().default("running"),
    attempt: integer("attempt").notNull(),
    /** Which of the worker's `capacity` slots this attempt occupies (see the unique index). */
    slot: integer("slot").notNull(),
    claimedAt: timestamptz("claimed_at").notNull().defaultNow(),
    leaseExpiresAt: timestamptz("lease_expires_at").notNull(),
    finishedAt: timestamptz("finished_at"),
    error: text("error"),
    errorInfo: jsonb("error_info"),
    metrics: jsonb("metrics"),
    outputUrl: text("output_url"),
    /**
     * Claimed by an original buffer worker, which sends no heartbeat while a job runs: the lease is
     * LEGACY_LEASE_TTL_SEC, renewed by its progress reports and ended by its next idle heartbeat.
     */
    legacyLease: boolean("legacy_lease").notNull().default(false),
  },
  (t) => [
    check(
      "buffer_jobs_status_check",
      sql`${t.status} in ('running', 'succeeded', 'failed', 'interrupted', 'cancelled', 'released')`,
    ),
    // The reaper scans running leases by expiry; finished attempts never enter this index.
    index("buffer_jobs_running_lease_idx").on(t.leaseExpiresAt).where(sql`${t.status} = 'running'`),
    // Capacity is enforced by this index, not by a count: two claims of one worker that race pick
    // the same free slot and the second fails, where a count read from the statement's snapshot
    // would let both through. It also serves heartbeat renewals (lookup by worker).
    uniqueIndex("buffer_jobs_running_worker_slot_idx")
      .on(t.workerId, t.slot)
      .where(sql`${t.status} = 'running'`),
    index("buffer_jobs_job_id_idx").on(t.jobId),
  ],
);
