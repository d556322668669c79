export { bufferJobs, type DbBufferJob } from "./buffer-jobs.js";
export { bufferWorkers, type DbBufferWorker } from "./buffer-workers.js";
export { jobs, type DbJob } from "./jobs.js";
export { webhookDeliveries, type DbWebhookDelivery } from "./webhook-deliveries.js";
