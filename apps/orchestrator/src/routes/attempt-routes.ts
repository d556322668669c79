import { routes, type JobStatus, type JobStatusReport } from "@fleet/contract";
import type { FastifyBaseLogger } from "fastify";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import type { Principal } from "../auth/principal.js";
import { claimWithWait } from "../claims/claim-with-wait.js";
import { ApiError } from "../http/api-error.js";
import { principalOf } from "../http/api-key-auth.js";
import { assertActsAs } from "../http/worker-identity.js";
import { findAttemptWorker } from "../queue/find-attempt-worker.js";
import { jobExists } from "../queue/job-exists.js";
import { reportAttemptStatus } from "../queue/report-attempt-status.js";
import { findReportedAttempt, reportProgress } from "../queue/report-progress.js";
import { toClaimedJobView } from "../views/claimed-job-view.js";
import { contractRoute } from "./contract-route.js";
import type { RouteDeps } from "./deps.js";

/**
 * Claim, terminal status and progress: the routes that move a job through its attempts. With a
 * worker token they act only for that worker: its own claims, its own attempts' reports.
 */
export function attemptRoutes(deps: RouteDeps): FastifyPluginCallbackZod {
  const { config, db, auth, wake, counters, claims } = deps;
  const tags = ["worker API"];

  /** Under a worker token, the attempt must be one that worker claimed (unknown ones fall through to 404). */
  const assertOwnAttempt = async (principal: Principal, bufferJobId: string): Promise<void> => {
    if (principal.kind !== "worker") return;
    const holder = await findAttemptWorker(db.db, bufferJobId);
    if (holder !== null) assertActsAs(principal, holder, `the worker holding attempt ${bufferJobId}`);
  };
  return (app, _options, done) => {
    app.route({
      ...contractRoute(routes.claimJob, auth, tags),
      handler: async (request, reply) => {
        // Stop waiting when the worker hangs up: its claim would otherwise take a job nobody reads.
        // (The response's "close" fires when the connection drops before we answered; the
        // request's own "close" only means its body was read.)
        assertActsAs(principalOf(request), request.body.worker_id, `worker ${request.body.worker_id}`);
        const gone = new AbortController();
        const onClose = () => {
          if (!reply.raw.writableFinished) gone.abort();
        };
        reply.raw.once("close", onClose);
        try {
          const result = await claimWithWait(db.db, claims, wake, {
            workerId: request.body.worker_id,
            leaseTtlSec: config.LEASE_TTL_SEC,
            legacyLeaseTtlSec: config.LEGACY_LEASE_TTL_SEC,
            offlineAfterSec: config.WORKER_OFFLINE_AFTER_SEC,
            spillAfterSec: config.BUFFER_SPILL_AFTER_SEC,
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
          return { job: toClaimedJobView(job) };
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
        await assertOwnAttempt(principalOf(request), bufferJobId);
        const outcome = await applyTerminalReport(deps, bufferJobId, report, request.log);
        return { detail: "ok" as const, job_status: outcome.jobStatus };
      },
    });

    app.route({
      ...contractRoute(routes.reportProgress, auth, tags),
      handler: async (request) => {
        const jobId = request.params.job_id;
        const report = request.body;
        const principal = principalOf(request);
        assertActsAs(principal, report.worker_id, `worker ${report.worker_id}`);
        if (report.buffer_job_id) await assertOwnAttempt(principal, report.buffer_job_id);
        if (report.status === "succeeded" || report.status === "failed") {
          // The original main-tier worker's final report: it has no /status route and no
          // buffer_job_id, so the attempt is the one this worker holds, and the report is applied
          // (fenced, idempotent) exactly as a /status report of that attempt would be.
          const bufferJobId = report.buffer_job_id ?? (await findReportedAttempt(db.db, jobId, report.worker_id));
          if (!bufferJobId) {
            counters.leaseLost++;
            if (!(await jobExists(db.db, jobId))) throw new ApiError("not_found", `unknown job ${jobId}`);
            throw new ApiError("lease_lost", `worker ${report.worker_id} holds no attempt of job ${jobId}`);
          }
          const terminal = { status: report.status, error: report.error ?? null, output_url: report.output_url ?? null, metrics: report.metrics ?? null };
          const outcome = await applyTerminalReport(deps, bufferJobId, terminal, request.log);
          return { detail: "ok" as const, progress: outcome.jobStatus === "succeeded" ? 1 : report.progress, job_status: outcome.jobStatus };
        }
        const outcome = await reportProgress(db.db, jobId, report, config.LEGACY_LEASE_TTL_SEC);
        if (outcome.kind === "not_found") throw new ApiError("not_found", `unknown job ${jobId}`);
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

/**
 * One attempt's terminal report, from /status or a main-tier worker's final /progress: validated,
 * applied through `reportAttemptStatus` (fenced by attempt, idempotent), logged, and answered with
 * what the job became; a refusal is thrown as the contract's error.
 */
async function applyTerminalReport(
  deps: RouteDeps,
  bufferJobId: string,
  report: JobStatusReport,
  log: FastifyBaseLogger,
): Promise<{ jobStatus: JobStatus }> {
  const { config, db, counters, successes } = deps;
  if (report.status === "succeeded" && !report.output_url) {
    throw new ApiError("output_url_required", "a succeeded report must carry output_url");
  }
  const outcome = await reportAttemptStatus(db.db, bufferJobId, report, {
    retryBackoffBaseSec: config.RETRY_BACKOFF_BASE_SEC,
    quarantineAfterFailures: config.QUARANTINE_AFTER_FAILURES,
    quarantineSec: config.QUARANTINE_SEC,
  }, successes.complete);
  counters.statusReports++;
  switch (outcome.kind) {
    case "not_found":
      throw new ApiError("not_found", `unknown buffer_job_id ${bufferJobId}`);
    case "lease_lost":
      counters.leaseLost++;
      log.warn({ bufferJobId, reported: report.status, attemptStatus: outcome.attemptStatus }, "status_report_lease_lost");
      throw new ApiError("lease_lost", `attempt ${bufferJobId} no longer holds its job (it is ${outcome.attemptStatus})`);
    case "repeated":
      return { jobStatus: outcome.jobStatus };
    case "applied":
      if (report.status === "failed") {
        counters.attemptFailures.inc([report.error_info?.stage ?? "unknown", report.error_info?.error_type ?? "unknown"]);
      }
      log.info({ bufferJobId, reported: report.status, jobStatus: outcome.jobStatus }, "status_report_applied");
      if (outcome.quarantined) log.warn({ bufferJobId }, "worker_quarantined");
      return { jobStatus: outcome.jobStatus };
  }
}
