import { createLogger as createProcessLogger, type DestinationStream, type Logger } from "@fleet/runtime";

export type { Logger } from "@fleet/runtime";

/**
 * Keys that may hold a secret anywhere in a log object. pino's redaction is path based, so the
 * common nestings are listed; errors go through `serializeError`, which never copies request
 * configs (an axios error carries the B2 Basic credentials in `config.headers`).
 */
const REDACT_PATHS = [
  "internalApiKey",
  "workerToken",
  "*.workerToken",
  "appKey",
  "applicationKey",
  "authorization",
  "Authorization",
  "headers.authorization",
  "headers.Authorization",
  'headers["x-internal-api-key"]',
  "*.internalApiKey",
  "*.appKey",
  "*.applicationKey",
  "*.authorization",
  "*.Authorization",
  'headers["x-api-key"]',
  "*.headers.authorization",
  "*.headers.Authorization",
  '*.headers["x-internal-api-key"]',
];

/** The shared line shape (`@fleet/runtime`) with the worker's redaction and error serializer. */
export function createLogger(opts: { level: string; base?: Record<string, unknown> }, destination?: DestinationStream): Logger {
  return createProcessLogger(
    { service: "fleet-worker", level: opts.level, redactPaths: REDACT_PATHS, serializeError, ...(opts.base ? { base: opts.base } : {}) },
    destination,
  );
}

/** Message, type, code and stack only: never the request/response objects an HTTP error drags along. */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const extra = err as Error & { code?: unknown; statusCode?: unknown; cause?: unknown };
  if (typeof extra.code === "string" || typeof extra.code === "number") out.code = extra.code;
  if (typeof extra.statusCode === "number") out.statusCode = extra.statusCode;
  if (err.stack) out.stack = err.stack;
  if (extra.cause instanceof Error) out.cause = serializeError(extra.cause);
  return out;
}
