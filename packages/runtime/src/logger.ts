import { pino, type DestinationStream, type Logger } from "pino";

export type { DestinationStream, Logger } from "pino";

export interface LoggerOptions {
  /** Written as `service` on every line: which process wrote it. */
  service: string;
  level: string;
  /** Paths pino censors (keys, tokens, authorization headers), on top of nothing: each app names its own. */
  redactPaths: readonly string[];
  /** The `err` serializer; pino's standard one unless the app must scrub more (query parameters, request configs). */
  serializeError?: (err: unknown) => unknown;
  /**
   * A pino transport module for human-readable lines (the orchestrator's LOG_PRETTY passes
   * pino-pretty's resolved path, so only the app that offers it depends on it); ignored when a
   * destination is given.
   */
  prettyTransport?: string;
  base?: Record<string, unknown>;
}

/**
 * The one pino line shape of every Fleet process:
 * `{"level":"info","time":"2026-01-01T12:00:00.000Z","service":"fleet-worker",…,"msg":"event_name"}`.
 * A string level and an ISO time read the same in `docker logs` and a log store; errors go under
 * `err` through the serializer. Log calls pass the object first, then a stable event name.
 * `destination` lets tests capture the exact lines production would write.
 */
export function createLogger(opts: LoggerOptions, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level,
    base: { service: opts.service, ...opts.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...opts.redactPaths], censor: "[redacted]" },
    serializers: { err: opts.serializeError ?? pino.stdSerializers.err },
    formatters: { level: (label) => ({ level: label }) },
  };
  if (destination) return pino(options, destination);
  if (opts.prettyTransport) return pino({ ...options, transport: { target: opts.prettyTransport } });
  return pino(options, pino.destination({ fd: 1, sync: false }));
}
