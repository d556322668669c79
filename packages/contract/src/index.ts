export * from "./common.js";
export * from "./errors.js";
export * from "./headers.js";
export * from "./inference-api.js";
export * from "./public-api.js";
export * from "./routes.js";
export * from "./webhook-signature.js";
export * from "./worker-api.js";
