import { routes } from "@fleet/contract";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { claimWithWait } from "../claims/claim-with-wait.js";
import { ApiError } from "../http/api-error.js";
import { reportAttemptStatus } from "../queue/report-attempt-status.js";
import { reportProgress } from "../queue/report-progress.js";
import { toIso } from "../views/timestamps.js";
import { contractRoute } from "./contract-route.js";
import type { RouteDeps } from "./deps.js";

/** Claim, terminal status and progress: the routes that move a job through its attempts. */
export function attemptRoutes(deps: RouteDeps): FastifyPluginCallbackZod {
  const { config, db, auth, wake, counters } = deps;
  const tags = ["worker API"];
  return (app, _options, done) => {
    app.route({
      ...contractRoute(routes.claimJob, auth, tags),
      handler: async (request, reply) => {
        // Stop waiting when the worker hangs up: its claim would otherwise take a job nobody reads.
        // (The response's "close" fires when the connection drops before we answered; the
        // request's own "close" only means its body was read.)
        const gone = new AbortController();
        const onClose = () => {
          if (!reply.raw.writableFinished) gone.abort();
        };
        reply.raw.once("close", onClose);
        try {
          const result = await claimWithWait(db.db, wake, {
            workerId: request.body.worker_id,
            leaseTtlSec: config.LEASE_TTL_SEC,
            offlineAfterSec: config.WORKER_OFFLINE_AFTER_SEC,
            waitMs: request.body.wait_ms,
            signal: gone.signal,
          });
          if (!result.job) {
            counters.emptyClaims++;
            return { job: null, ...(result.reason ? { reason: result.reason } : {}) };
          }
          counters.claims++;
          const job = result.job;
          counters.queueWait.observe(Number(job.queue_wait_sec));
          request.log.info(
            { workerId: request.body.worker_id, jobId: job.job_id, bufferJobId: job.buffer_job_id, attempt: job.attempt },
            "job_claimed",
          );
          return {
            job: {
              buffer_job_id: job.buffer_job_id,
              musetalk_job_id: job.job_id,
              video_url: job.video_url,
              audio_url: job.audio_url,
              aspect_ratio: job.aspect_ratio,
              resolution: job.resolution,
              params: job.params,
              attempt: job.attempt,
              lease_expires_at: toIso(job.lease_expires_at),
            },
          };
        } finally {
          reply.raw.off("close", onClose);
        }
      },
    });

    app.route({
      ...contractRoute(routes.reportJobStatus, auth, tags),
      handler: async (request) => {
        const bufferJobId = request.params.buffer_job_id;
        const report = request.body;
        if (report.status === "succeeded" && !report.output_url) {
          throw new ApiError("output_url_required", "a succeeded report must carry output_url");
        }
        const outcome = await reportAttemptStatus(db.db, bufferJobId, report, {
          retryBackoffBaseSec: config.RETRY_BACKOFF_BASE_SEC,
          quarantineAfterFailures: config.QUARANTINE_AFTER_FAILURES,
          quarantineSec: config.QUARANTINE_SEC,
        });
        counters.statusReports++;
        switch (outcome.kind) {
          case "not_found":
            throw new ApiError("not_found", `unknown buffer_job_id ${bufferJobId}`);
          case "lease_lost":
            counters.leaseLost++;
            request.log.warn({ bufferJobId, reported: report.status, attemptStatus: outcome.attemptStatus }, "status_report_lease_lost");
            throw new ApiError("lease_lost", `attempt ${bufferJobId} no longer holds its job (it is ${outcome.attemptStatus})`);
          case "repeated":
            return { detail: "ok" as const, job_status: outcome.jobStatus };
          case "applied":
            if (report.status === "failed") {
              counters.attemptFailures.inc([report.error_info?.stage ?? "unknown", report.error_info?.error_type ?? "unknown"]);
            }
            request.log.info({ bufferJobId, reported: report.status, jobStatus: outcome.jobStatus }, "status_report_applied");
            if (outcome.quarantined) request.log.warn({ bufferJobId }, "worker_quarantined");
            return { detail: "ok" as const, job_status: outcome.jobStatus };
        }
      },
    });

    app.route({
      ...contractRoute(routes.reportProgress, auth, tags),
      handler: async (request) => {
        const outcome = await reportProgress(db.db, request.params.job_id, request.body);
        if (outcome.kind === "not_found") throw new ApiError("not_found", `unknown job ${request.params.job_id}`);
        if (outcome.kind === "lease_lost") {
          counters.leaseLost++;
          throw new ApiError("lease_lost", "this worker or attempt does not hold the job");
        }
        return { detail: "ok" as const, progress: outcome.progress };
      },
    });
    done();
  };
}
