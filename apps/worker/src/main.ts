#!/usr/bin/env node
import { ConfigError, loadConfigFromProcess } from "./config.js";
import { createLogger } from "./logger.js";
import { startWorker } from "./worker.js";

/**
 * Entry point: config once, logger, parts, start. The first SIGTERM (or SIGINT) drains — no new
 * claims, running jobs finish within DRAIN_GRACE_SEC or are handed back — and exits 0; a second
 * one aborts the running jobs at once, and their attempts are reported rather than lost.
 */
async function main() {
  let config;
  try {
    config = loadConfigFromProcess();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`fleet-worker: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger({ level: config.logLevel });
  // stdout is written asynchronously: exit only once the last line is out.
  const exit = (code: number) => log.flush(() => process.exit(code));
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "worker_crashed");
    exit(1);
  });
  process.on("unhandledRejection", (err) => {
    log.fatal({ err }, "worker_crashed");
    exit(1);
  });

  const worker = await startWorker(config, log);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    log.info({ signal, count: signals }, "worker_signal");
    if (signals === 1) {
      void worker.drain().then(
        () => exit(0),
        (err: unknown) => {
          log.fatal({ err }, "worker_drain_failed");
          exit(1);
        },
      );
    } else {
      worker.abortNow();
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

void main();
