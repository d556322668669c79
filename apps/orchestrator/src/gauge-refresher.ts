import type { Logger } from "pino";
import type { Config } from "./config.js";
import type { Executor } from "./db/client.js";
import { startLoop } from "./loop.js";
import { readFleetGauges, type FleetGauges } from "./queue/read-fleet-gauges.js";
import { readWorkerGauges, type WorkerGauges } from "./queue/read-worker-gauges.js";

export interface GaugeRefresher {
  /** The last gauges read, or null before the first refresh succeeded. */
  readonly current: FleetGauges | null;
  /** Per-worker gauges from the same refresh, or null before the first one succeeded. */
  readonly workers: WorkerGauges | null;
  /** When `current` was read (ms since epoch), 0 before the first refresh. */
  readonly refreshedAt: number;
  stop(): Promise<void>;
}

/**
 * Reads the database gauges every METRICS_REFRESH_SEC and keeps them for /metrics, so a scrape
 * costs no query however many scrapers there are. A failed refresh keeps the last values (their
 * age is reported) and the loop goes on.
 */
export function startGaugeRefresher(db: Executor, config: Pick<Config, "METRICS_REFRESH_SEC" | "WORKER_OFFLINE_AFTER_SEC">, log: Logger): GaugeRefresher {
  let current: FleetGauges | null = null;
  let workers: WorkerGauges | null = null;
  let refreshedAt = 0;
  const loop = startLoop("metrics_gauges", config.METRICS_REFRESH_SEC * 1000, log.child({ component: "metrics" }), async () => {
    const [fleet, perWorker] = await Promise.all([
      readFleetGauges(db, config.WORKER_OFFLINE_AFTER_SEC),
      readWorkerGauges(db, config.WORKER_OFFLINE_AFTER_SEC),
    ]);
    current = fleet;
    workers = perWorker;
    refreshedAt = Date.now();
  });
  return {
    get current() {
      return current;
    },
    get workers() {
      return workers;
    },
    get refreshedAt() {
      return refreshedAt;
    },
    stop: () => loop.stop(),
  };
}
