// The worker as a library, for tests and tools that run it in-process.
export { loadConfig, ConfigError, type Config } from "./config.js";
export { createLogger } from "./logger.js";
export { startWorker, type Worker, type WorkerParts } from "./worker.js";
