import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

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

export function createLogger(opts: { level: string; base?: Record<string, unknown> }, destination?: DestinationStream): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: "fleet-worker", ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError, error: serializeError },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
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
