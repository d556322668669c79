export * from "./check-target.js";
export * from "./classify-address.js";
export * from "./egress-refused-error.js";
export * from "./guarded-agent.js";
export * from "./resolve.js";
