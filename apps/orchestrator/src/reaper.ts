import type { Logger } from "pino";
import type { Config } from "./config.js";
import type { Executor } from "./db/client.js";
import { startLoop, type Loop } from "./loop.js";
import type { Counters } from "./metrics.js";
import { analyzeGrownTables } from "./queue/analyze-grown-tables.js";
import { markWorkersOffline } from "./queue/mark-workers-offline.js";
import { reapExpiredLeases } from "./queue/reap-expired-leases.js";

type ReaperConfig = Pick<Config, "WORKER_OFFLINE_AFTER_SEC" | "MAX_INTERRUPTIONS" | "REAPER_INTERVAL_SEC">;

/**
 * One reaper pass. Each step is its own statement and its own try, so a failure of one (say a
 * lock timeout) does not skip the others; all are safe to run from several replicas at once.
 */
export async function runReaperPass(db: Executor, config: ReaperConfig, log: Logger, counters?: Counters): Promise<void> {
  try {
    for (const worker of await markWorkersOffline(db, config.WORKER_OFFLINE_AFTER_SEC)) {
      const fields = { workerId: worker.worker_id, lastHeartbeat: worker.last_heartbeat };
      if (worker.status === "offline") log.warn(fields, "worker_marked_offline");
      else log.info(fields, "worker_silent_running_legacy_job");
    }
  } catch (err) {
    log.error({ err }, "reaper_mark_offline_failed");
  }
  try {
    // Batches of 500; loop while full so a backlog after an outage clears in one pass.
    for (;;) {
      const reaped = await reapExpiredLeases(db, config.MAX_INTERRUPTIONS);
      for (const lease of reaped) {
        if (counters) counters.leasesReaped++;
        const fields = { jobId: lease.job_id, bufferJobId: lease.buffer_job_id, workerId: lease.worker_id, interruptions: lease.interruptions };
        if (lease.job_status === "queued") log.warn(fields, "lease_expired_job_requeued");
        else if (lease.job_status === "failed") log.error(fields, "lease_expired_job_failed_poison");
        else log.info(fields, "lease_expired_job_cancelled");
      }
      if (reaped.length < 500) break;
    }
  } catch (err) {
    log.error({ err }, "reaper_expire_leases_failed");
  }
  try {
    const analyzed = await analyzeGrownTables(db);
    if (analyzed.length > 0) log.info({ tables: analyzed }, "queue_tables_analyzed");
  } catch (err) {
    log.warn({ err }, "reaper_analyze_failed");
  }
}

export function startReaper(db: Executor, config: ReaperConfig, log: Logger, counters?: Counters): Loop {
  const reaperLog = log.child({ component: "reaper" });
  return startLoop("reaper", config.REAPER_INTERVAL_SEC * 1000, reaperLog, () =>
    runReaperPass(db, config, reaperLog, counters),
  );
}
