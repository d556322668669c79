export * from "./fleet-api-error.js";
export * from "./fleet-client.js";
export * from "./run-cli.js";
export * from "./wait-for-job.js";
