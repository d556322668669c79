import { sql } from "drizzle-orm";
import { boolean, check, doublePrecision, index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { clients } from "./clients.js";
import { timestamptz } from "./columns.js";

/**
 * One row per client job. `id` is `musetalk_job_id` on the worker wire. `attempts` counts claims,
 * `failures` counts failed attempts (bounded by `max_attempts`), `interruptions` counts expired
 * leases (bounded by MAX_INTERRUPTIONS; they are not failures).
 */
export const jobs = pgTable(
  "jobs",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    status: text("status").notNull().default("queued"),
    videoUrl: text("video_url").notNull(),
    audioUrl: text("audio_url").notNull(),
    aspectRatio: text("aspect_ratio").notNull(),
    resolution: text("resolution").notNull(),
    params: jsonb("params").notNull().default({}),
    webhookUrl: text("webhook_url"),
    metadata: jsonb("metadata"),
    priority: integer("priority").notNull().default(0),
    progress: doublePrecision("progress").notNull().default(0),
    phase: text("phase"),
    attempts: integer("attempts").notNull().default(0),
    failures: integer("failures").notNull().default(0),
    interruptions: integer("interruptions").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    runAfter: timestamptz("run_after").notNull().defaultNow(),
    /** The current attempt (buffer_jobs row); null while queued. */
    bufferJobId: uuid("buffer_job_id"),
    workerId: text("worker_id"),
    /** Who ran the previous attempt, so a retry prefers another worker. */
    lastWorkerId: text("last_worker_id"),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    outputUrl: text("output_url"),
    metrics: jsonb("metrics"),
    error: text("error"),
    errorInfo: jsonb("error_info"),
    /** sha256 of the video's bytes as the client named it (migration 0004); null: none named. */
    videoSha256: text("video_sha256"),
    /**
     * The client that created the job. Null only for jobs created before clients existed
     * (migration 0002): the internal key and bootstrap clients see those (docs/tenancy.md).
     */
    clientId: uuid("client_id").references(() => clients.id),
    /** Unique per client (see the index below), so one client's key never finds another's job. */
    idempotencyKey: text("idempotency_key"),
    /** sha256 of the create body, so a reused Idempotency-Key with another body is refused. */
    requestHash: text("request_hash"),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    updatedAt: timestamptz("updated_at").notNull().defaultNow(),
    startedAt: timestamptz("started_at"),
    finishedAt: timestamptz("finished_at"),
  },
  (t) => [
    check(
      "jobs_status_check",
      sql`${t.status} in ('queued', 'running', 'succeeded', 'failed', 'cancelled')`,
    ),
    check("jobs_progress_check", sql`${t.progress} >= 0 and ${t.progress} <= 1`),
    check("jobs_video_sha256_check", sql`${t.videoSha256} ~ '^[0-9a-f]{64}$'`),
    // Only queued rows are in it, so the claim stays an index scan with a million finished jobs.
    index("jobs_runnable_idx")
      .on(t.priority.desc(), t.runAfter.asc(), t.createdAt.asc())
      .where(sql`${t.status} = 'queued'`),
    // Newest-first listing with a (created_at, id) cursor.
    index("jobs_created_at_idx").on(t.createdAt.desc(), t.id.desc()),
    index("jobs_status_created_at_idx").on(t.status, t.createdAt.desc(), t.id.desc()),
    uniqueIndex("jobs_client_idempotency_key_idx").on(t.clientId, t.idempotencyKey),
    // A client's own listing, newest first, without reading other clients' rows.
    index("jobs_client_created_at_idx").on(t.clientId, t.createdAt.desc(), t.id.desc()),
  ],
);
