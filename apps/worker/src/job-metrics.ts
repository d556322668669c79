import type { createJobRunner } from "./job-runner.js";
import type { HeartbeatLoopOptions } from "./heartbeat-loop.js";
import type { Metrics } from "./metrics.js";

/** The job and heartbeat series of /metrics, fed by the runner's outcomes and the heartbeat's results. */
export function registerJobMetrics(
  metrics: Metrics,
  gpuClass: () => string,
): { observeOutcome: NonNullable<Parameters<typeof createJobRunner>[0]["onOutcome"]>; observeBeat: NonNullable<HeartbeatLoopOptions["onBeat"]> } {
  const countOutcome = metrics.counter("fleet_worker_jobs_total", "Jobs ended on this worker, by outcome.");
  const countSeconds = metrics.counter("fleet_worker_job_seconds_total", "Wall time spent in jobs, by outcome.");
  const countBeats = metrics.counter("fleet_worker_heartbeats_total", "Heartbeats sent, by result and HTTP status.");
  const countFailures = metrics.counter("fleet_worker_job_failures_total", "Jobs that failed on this worker, by stage and error type.");
  // Seconds, from a 0.5 s download to a 2 h generation: one set of bounds for every stage.
  const bounds = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
  const observeJob = metrics.histogram("fleet_worker_job_duration_seconds", "Wall time of a job on this worker, claim to report, by GPU class and outcome.", bounds);
  const observeStage = metrics.histogram("fleet_worker_stage_duration_seconds", "Time in each pipeline stage (download, validation, inference, upload), by GPU class.", bounds);

  return {
    observeOutcome: (outcome, seconds, report) => {
      countOutcome({ outcome });
      countSeconds({ outcome }, seconds);
      observeJob({ gpu_class: gpuClass(), outcome }, seconds);
      if (report?.status === "failed") {
        countFailures({ stage: report.error_info?.stage ?? "unknown", error_type: report.error_info?.error_type ?? "unknown" });
      }
      const stages = report?.metrics?.stage_times;
      if (stages && typeof stages === "object" && !Array.isArray(stages)) {
        for (const [stage, value] of Object.entries(stages)) {
          if (typeof value === "number") observeStage({ gpu_class: gpuClass(), stage }, value);
        }
      }
    },
    observeBeat: ({ ok, statusCode }) => countBeats({ result: ok ? "ok" : "error", status_code: String(statusCode ?? "none") }),
  };
}
