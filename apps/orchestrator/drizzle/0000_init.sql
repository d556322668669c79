CREATE TABLE "buffer_jobs" (
	"buffer_job_id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"job_id" uuid NOT NULL,
	"worker_id" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"attempt" integer NOT NULL,
	"slot" integer NOT NULL,
	"claimed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_expires_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone,
	"error" text,
	"error_info" jsonb,
	"metrics" jsonb,
	"output_url" text,
	CONSTRAINT "buffer_jobs_status_check" CHECK ("buffer_jobs"."status" in ('running', 'succeeded', 'failed', 'interrupted', 'cancelled', 'released'))
);
--> statement-breakpoint
CREATE TABLE "buffer_workers" (
	"worker_id" text PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"gpu_class" text,
	"capacity" integer DEFAULT 1 NOT NULL,
	"error" text,
	"last_heartbeat" timestamp with time zone DEFAULT now() NOT NULL,
	"first_seen" timestamp with time zone DEFAULT now() NOT NULL,
	"version" text,
	"system" jsonb,
	"engine" jsonb,
	"drain_requested" boolean DEFAULT false NOT NULL,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"quarantined_until" timestamp with time zone,
	CONSTRAINT "buffer_workers_status_check" CHECK ("buffer_workers"."status" in ('idle', 'busy', 'draining', 'error', 'offline')),
	CONSTRAINT "buffer_workers_capacity_check" CHECK ("buffer_workers"."capacity" >= 1)
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"video_url" text NOT NULL,
	"audio_url" text NOT NULL,
	"aspect_ratio" text NOT NULL,
	"resolution" text NOT NULL,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"webhook_url" text,
	"metadata" jsonb,
	"priority" integer DEFAULT 0 NOT NULL,
	"progress" double precision DEFAULT 0 NOT NULL,
	"phase" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"failures" integer DEFAULT 0 NOT NULL,
	"interruptions" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"run_after" timestamp with time zone DEFAULT now() NOT NULL,
	"buffer_job_id" uuid,
	"worker_id" text,
	"last_worker_id" text,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"output_url" text,
	"metrics" jsonb,
	"error" text,
	"error_info" jsonb,
	"idempotency_key" text,
	"request_hash" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "jobs_idempotency_key_unique" UNIQUE("idempotency_key"),
	CONSTRAINT "jobs_status_check" CHECK ("jobs"."status" in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
	CONSTRAINT "jobs_progress_check" CHECK ("jobs"."progress" >= 0 and "jobs"."progress" <= 1)
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" uuid NOT NULL,
	"event" text NOT NULL,
	"url" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"last_status_code" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone,
	CONSTRAINT "webhook_deliveries_status_check" CHECK ("webhook_deliveries"."status" in ('pending', 'delivered', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "buffer_jobs" ADD CONSTRAINT "buffer_jobs_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "buffer_jobs_running_lease_idx" ON "buffer_jobs" USING btree ("lease_expires_at") WHERE "buffer_jobs"."status" = 'running';--> statement-breakpoint
CREATE UNIQUE INDEX "buffer_jobs_running_worker_slot_idx" ON "buffer_jobs" USING btree ("worker_id","slot") WHERE "buffer_jobs"."status" = 'running';--> statement-breakpoint
CREATE INDEX "buffer_jobs_job_id_idx" ON "buffer_jobs" USING btree ("job_id");--> statement-breakpoint
CREATE INDEX "jobs_runnable_idx" ON "jobs" USING btree ("priority" DESC NULLS LAST,"run_after","created_at") WHERE "jobs"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "jobs_created_at_idx" ON "jobs" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "jobs_status_created_at_idx" ON "jobs" USING btree ("status","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "webhook_deliveries_due_idx" ON "webhook_deliveries" USING btree ("next_attempt_at") WHERE "webhook_deliveries"."status" = 'pending';