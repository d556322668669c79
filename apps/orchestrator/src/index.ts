// The package's public surface, for benchmarks and tools that drive the orchestrator in-process.
export { buildApp, JOB_QUEUED_CHANNEL, type App, type BuildAppOptions } from "./app.js";
export { ConfigSchema, loadConfig, loadDatabaseConfig, type Config } from "./config.js";
export { createDatabase, queryRows, type Database, type DatabaseHandle, type Executor } from "./db/client.js";
export { migratePostgresUrl, MIGRATIONS_FOLDER, runMigrations } from "./db/migrate.js";
export { createLogger } from "./logging/create-logger.js";
export { claimNextJob, claimNextJobSql, type ClaimedJobRow, type ClaimOptions } from "./queue/claim-next-job.js";
export { findClaimRefusal } from "./queue/find-claim-refusal.js";
export { createJob } from "./queue/create-job.js";
export { reportAttemptStatus } from "./queue/report-attempt-status.js";
export { SuccessBatcher } from "./queue/success-batcher.js";
export { ClaimBatcher } from "./queue/claim-batcher.js";
export { runReaperPass, startReaper } from "./reaper.js";
export { startWebhookDelivery } from "./webhooks/webhook-delivery.js";
