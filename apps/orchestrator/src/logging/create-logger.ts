import { createRequire } from "node:module";
import { createLogger as createProcessLogger, type DestinationStream, type Logger } from "@fleet/runtime";
import type { Config } from "../config.js";
import { serializeError } from "./serialize-error.js";

/**
 * Paths pino censors. Keys travel in headers (x-internal-api-key, x-api-key, authorization) and
 * could reach a log through a request object, a config dump or an error's context.
 */
const REDACT_PATHS = [
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

/** The shared line shape (`@fleet/runtime`) with the orchestrator's redaction and error scrubbing. */
export function createLogger(
  config: Pick<Config, "LOG_LEVEL" | "LOG_PRETTY">,
  destination?: DestinationStream,
): Logger {
  return createProcessLogger(
    {
      service: "fleet-orchestrator",
      level: config.LOG_LEVEL,
      redactPaths: REDACT_PATHS,
      serializeError,
      ...(config.LOG_PRETTY ? { prettyTransport: createRequire(import.meta.url).resolve("pino-pretty") } : {}),
    },
    destination,
  );
}
