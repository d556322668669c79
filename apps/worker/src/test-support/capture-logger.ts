import { createLogger, type Logger } from "../logger.js";

export type LogRecord = Record<string, unknown> & { msg: string; level: string };

/** The worker's real logger (redaction, serializers), writing to an array instead of stdout. */
export function captureLogger(level = "debug"): { log: Logger; records: () => LogRecord[]; messages: (msg: string) => LogRecord[]; text: () => string } {
  const lines: string[] = [];
  const log = createLogger({ level }, { write: (s: string) => void lines.push(s) });
  const records = () => lines.map((l) => JSON.parse(l) as LogRecord);
  return { log, records, messages: (msg) => records().filter((r) => r.msg === msg), text: () => lines.join("") };
}
