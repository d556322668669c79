export { apiKeys } from "./api-keys.js";
export { bufferJobs } from "./buffer-jobs.js";
export { bufferWorkers } from "./buffer-workers.js";
export { clients } from "./clients.js";
export { jobs } from "./jobs.js";
export { webhookDeliveries } from "./webhook-deliveries.js";
export { workerTokens } from "./worker-tokens.js";
