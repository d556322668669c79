import pino from "pino";
import type { Config } from "../config.js";
import { serializeError } from "./serialize-error.js";

/**
 * Paths pino censors. Keys travel in headers (x-internal-api-key, x-api-key, authorization) and
 * could reach a log through a request object, a config dump or an error's context.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  'req.headers["x-internal-api-key"]',
  'req.headers["x-api-key"]',
  "headers.authorization",
  'headers["x-internal-api-key"]',
  'headers["x-api-key"]',
  "*.INTERNAL_API_KEY",
  "*.PUBLIC_API_KEYS",
  "*.WEBHOOK_SECRET",
  "*.apiKey",
  "*.internalApiKey",
  "*.secret",
  "*.password",
  "INTERNAL_API_KEY",
  "PUBLIC_API_KEYS",
  "WEBHOOK_SECRET",
  "apiKey",
  "secret",
];

/** `destination` lets tests capture the exact lines production would write. */
export function createLogger(
  config: Pick<Config, "LOG_LEVEL" | "LOG_PRETTY">,
  destination?: pino.DestinationStream,
): pino.Logger {
  const options: pino.LoggerOptions = {
    name: "fleet-orchestrator",
    level: config.LOG_LEVEL,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: { err: serializeError },
    ...(config.LOG_PRETTY && !destination ? { transport: { target: "pino-pretty" } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}
