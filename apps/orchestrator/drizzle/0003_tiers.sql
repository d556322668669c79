-- Tiers and the original workers' leases. Every statement is an in-place upgrade: ADD COLUMN with
-- a constant default writes no rows, the checks scan buffer_workers (one row per GPU), and the
-- index is over the few non-buffer workers. Rows that exist keep working: every worker is a
-- buffer-tier, Fleet-protocol worker until its next heartbeat says otherwise.
ALTER TABLE "buffer_jobs" ADD COLUMN "legacy_lease" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "buffer_workers" ADD COLUMN "tier" text DEFAULT 'buffer' NOT NULL;--> statement-breakpoint
ALTER TABLE "buffer_workers" ADD COLUMN "protocol" text DEFAULT 'fleet' NOT NULL;--> statement-breakpoint
CREATE INDEX "buffer_workers_preferred_tier_idx" ON "buffer_workers" USING btree ("last_heartbeat") WHERE "buffer_workers"."tier" <> 'buffer';--> statement-breakpoint
ALTER TABLE "buffer_workers" ADD CONSTRAINT "buffer_workers_tier_check" CHECK ("buffer_workers"."tier" in ('buffer', 'main', 'transient', 'expensive'));--> statement-breakpoint
ALTER TABLE "buffer_workers" ADD CONSTRAINT "buffer_workers_protocol_check" CHECK ("buffer_workers"."protocol" in ('fleet', 'original'));