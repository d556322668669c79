export * from "./env.js";
export * from "./logger.js";
export * from "./wake-signal.js";
export * from "./send-file-range.js";
