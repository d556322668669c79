export { apiKeys, type DbApiKey } from "./api-keys.js";
export { bufferJobs, type DbBufferJob } from "./buffer-jobs.js";
export { bufferWorkers, type DbBufferWorker } from "./buffer-workers.js";
export { clients, type DbClient } from "./clients.js";
export { jobs, type DbJob } from "./jobs.js";
export { webhookDeliveries, type DbWebhookDelivery } from "./webhook-deliveries.js";
export { workerTokens, type DbWorkerToken } from "./worker-tokens.js";
