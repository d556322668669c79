-- The avatar's hash a job may name (video_sha256). An in-place upgrade: a nullable column without
-- a default writes no rows. The check is added NOT VALID and then validated; the migrations run in
-- one transaction, so `jobs` stays locked for the one scan that validation makes (every existing
-- row is NULL and passes). Rows that exist keep working: they name no hash, and every attempt
-- downloads as before.
ALTER TABLE "jobs" ADD COLUMN "video_sha256" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_video_sha256_check" CHECK ("jobs"."video_sha256" ~ '^[0-9a-f]{64}$') NOT VALID;--> statement-breakpoint
ALTER TABLE "jobs" VALIDATE CONSTRAINT "jobs_video_sha256_check";
