-- Clients are tenants (API keys stored hashed, a webhook secret per client) and workers may get
-- their own tokens. Upgrades a running deployment in place: existing jobs keep client_id null and
-- stay readable by the internal key and by the bootstrap clients made from PUBLIC_API_KEYS, which
-- could read them before (docs/tenancy.md). The migrator runs this in one transaction, so the
-- idempotency uniqueness is never absent in between.
CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"client_id" uuid NOT NULL,
	"prefix" text NOT NULL,
	"key_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	CONSTRAINT "api_keys_key_hash_unique" UNIQUE("key_hash")
);
--> statement-breakpoint
CREATE TABLE "clients" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"webhook_secret" text,
	"bootstrap" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "worker_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"worker_id" text NOT NULL,
	"prefix" text NOT NULL,
	"token_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	CONSTRAINT "worker_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "client_id" uuid;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_client_id_clients_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."clients"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_prefix_idx" ON "api_keys" USING btree ("prefix");--> statement-breakpoint
CREATE INDEX "api_keys_client_id_idx" ON "api_keys" USING btree ("client_id");--> statement-breakpoint
CREATE UNIQUE INDEX "worker_tokens_prefix_idx" ON "worker_tokens" USING btree ("prefix");--> statement-breakpoint
CREATE INDEX "worker_tokens_worker_id_idx" ON "worker_tokens" USING btree ("worker_id");--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_client_id_clients_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."clients"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_client_idempotency_key_idx" ON "jobs" USING btree ("client_id","idempotency_key");--> statement-breakpoint
-- Idempotency keys were unique across all clients: client B replaying A's key got A's job.
ALTER TABLE "jobs" DROP CONSTRAINT "jobs_idempotency_key_unique";--> statement-breakpoint
CREATE INDEX "jobs_client_created_at_idx" ON "jobs" USING btree ("client_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
-- Jobs created with the internal key belong to this client, so a null client_id keeps meaning
-- "created before clients existed" and that set never grows. It signs with WEBHOOK_SECRET.
INSERT INTO "clients" ("id", "name") VALUES ('00000000-0000-0000-0000-000000000000', 'internal');
