import type { ErrorInfo, JobStatus, JobStatusReport } from "@fleet/contract";
import { errorInfoOf, isInputFault } from "../failures/classify-failure.js";
import { sql } from "drizzle-orm";
import { queryRows, type Database, type Executor } from "../db/client.js";
import { completeSucceededAttempts, type SuccessReport } from "./complete-succeeded-attempts.js";
import { jsonb } from "./sql-values.js";

export interface RetryPolicy {
  retryBackoffBaseSec: number;
  quarantineAfterFailures: number;
  quarantineSec: number;
}

export type StatusReportOutcome =
  | { kind: "applied"; jobStatus: JobStatus; quarantined: boolean }
  | { kind: "repeated"; jobStatus: JobStatus }
  | { kind: "not_found" }
  | { kind: "lease_lost"; attemptStatus: string };

interface LockedAttempt {
  attempt_status: string;
  worker_id: string;
  job_id: string;
  job_status: JobStatus;
  current_attempt: string | null;
  cancel_requested: boolean;
  failures: number;
  max_attempts: number;
}

/**
 * Applies a worker's terminal report for one attempt, fenced by `buffer_job_id` alone (original
 * workers send no worker id on /status). Locks are taken worker → attempt → job: a heartbeat
 * locks the worker row and then renews its attempts, and the reaper takes attempt → job, so no
 * two of them wait on each other in a cycle (the benchmark saw 40P01 deadlocks when a report
 * locked the worker last). Whoever comes second sees the other's result: a reaped attempt is
 * `interrupted` and its late report gets `lease_lost`. A finished attempt repeating its own
 * outcome is a retry of a lost reply and gets 200 again.
 */
export async function reportAttemptStatus(
  db: Database,
  bufferJobId: string,
  report: JobStatusReport,
  policy: RetryPolicy,
  completeSuccess: (s: SuccessReport) => Promise<boolean> = async (s) => (await completeSucceededAttempts(db, [s]))[0] ?? false,
): Promise<StatusReportOutcome> {
  if (report.status === "succeeded" && (await completeSuccess({ bufferJobId, report }))) {
    return { kind: "applied", jobStatus: "succeeded", quarantined: false };
  }
  return db.transaction(async (tx) => {
    const [owner] = await queryRows<{ worker_id: string }>(
      tx,
      sql`select worker_id from buffer_jobs where buffer_job_id = ${bufferJobId}`,
    );
    if (!owner) return { kind: "not_found" } as const;
    await tx.execute(sql`select 1 from buffer_workers where worker_id = ${owner.worker_id} for no key update`);
    const [attempt] = await queryRows<{ status: string }>(
      tx,
      sql`select status from buffer_jobs where buffer_job_id = ${bufferJobId} for update`,
    );
    if (!attempt) return { kind: "not_found" } as const;
    const [row] = await queryRows<LockedAttempt>(
      tx,
      sql`select b.status as attempt_status, b.worker_id, b.job_id, j.status as job_status,
                 j.buffer_job_id as current_attempt, j.cancel_requested, j.failures, j.max_attempts
            from buffer_jobs b join jobs j on j.id = b.job_id
           where b.buffer_job_id = ${bufferJobId}
             for update of j`,
    );
    if (!row) return { kind: "not_found" } as const;
    if (row.attempt_status !== "running") {
      return row.attempt_status === report.status
        ? ({ kind: "repeated", jobStatus: row.job_status } as const)
        : ({ kind: "lease_lost", attemptStatus: row.attempt_status } as const);
    }
    if (row.current_attempt !== bufferJobId || row.job_status !== "running") {
      return { kind: "lease_lost", attemptStatus: row.attempt_status } as const;
    }
    return applyReport(tx, bufferJobId, row, report, policy);
  });
}

async function applyReport(
  tx: Executor,
  bufferJobId: string,
  row: LockedAttempt,
  report: JobStatusReport,
  policy: RetryPolicy,
): Promise<StatusReportOutcome> {
  const closeAttempt = (info: ErrorInfo | null) => sql`
    update buffer_jobs
       set status = ${report.status}, finished_at = now(), error = ${report.error ?? null},
           error_info = ${jsonb(info)}, metrics = ${jsonb(report.metrics)}, output_url = ${report.output_url ?? null}
     where buffer_job_id = ${bufferJobId}`;

  if (report.status === "succeeded") {
    // Exactly-once completion: this is the job's current running attempt and we hold its lock.
    await tx.execute(closeAttempt(null));
    await tx.execute(sql`
      with job as (
        update jobs set status = 'succeeded', progress = 1, phase = 'completed', output_url = ${report.output_url ?? null},
                        metrics = ${jsonb(report.metrics)}, error = null, error_info = null,
                        finished_at = now(), updated_at = now()
         where id = ${row.job_id}
        returning id)
      update buffer_workers set consecutive_failures = 0 where worker_id = ${row.worker_id} and consecutive_failures <> 0`);
    return { kind: "applied", jobStatus: "succeeded", quarantined: false };
  }

  if (report.status === "released" || (report.status === "cancelled" && !row.cancel_requested)) {
    // A drain hand-back (or a cancel nobody asked for): run it again at once, no failure counted,
    // preferably elsewhere.
    await tx.execute(closeAttempt(null));
    await tx.execute(requeue(row.job_id, row.worker_id, sql`now()`));
    return { kind: "applied", jobStatus: "queued", quarantined: false };
  }

  if (report.status === "cancelled") {
    await tx.execute(closeAttempt(null));
    await tx.execute(finish(row.job_id, "cancelled", "cancelled by client request", null));
    return { kind: "applied", jobStatus: "cancelled", quarantined: false };
  }

  const info = errorInfoOf(report);
  const message = report.error ?? info.message;
  await tx.execute(closeAttempt(info));
  await tx.execute(sql`update jobs set failures = failures + 1, error = ${message}, error_info = ${jsonb(info)}
                        where id = ${row.job_id}`);
  const isMedia = info.error_type === "media_error";
  const willRetry = !row.cancel_requested && !isMedia && info.retryable && row.failures + 1 < row.max_attempts;
  if (willRetry) {
    // Exponential backoff in SQL (base · 2^failures, capped at an hour) so every replica agrees.
    const runAfter = sql`now() + make_interval(secs => least(${policy.retryBackoffBaseSec} * power(2, least(${row.failures}, 16)), 3600))`;
    await tx.execute(requeue(row.job_id, row.worker_id, runAfter));
  } else if (row.cancel_requested) {
    await tx.execute(finish(row.job_id, "cancelled", message, null));
  } else {
    await tx.execute(finish(row.job_id, "failed", message, null));
  }
  // Failures caused by the job's inputs (media, downloads) are the job's, not the worker's: they
  // count against the job's attempts above and never toward quarantine.
  let quarantined = false;
  if (!isInputFault(info)) {
    const [worker] = await queryRows<{ quarantined: boolean }>(
      tx,
      sql`update buffer_workers
             set consecutive_failures = case when consecutive_failures + 1 >= ${policy.quarantineAfterFailures}
                                             then 0 else consecutive_failures + 1 end,
                 quarantined_until = case when consecutive_failures + 1 >= ${policy.quarantineAfterFailures}
                                          then now() + make_interval(secs => ${policy.quarantineSec})
                                          else quarantined_until end
           where worker_id = ${row.worker_id}
       returning quarantined_until is not null and quarantined_until > now() and consecutive_failures = 0 as quarantined`,
    );
    quarantined = worker?.quarantined ?? false;
  }
  return { kind: "applied", jobStatus: willRetry ? "queued" : row.cancel_requested ? "cancelled" : "failed", quarantined };
}

function requeue(jobId: string, lastWorkerId: string, runAfter: ReturnType<typeof sql>) {
  return sql`update jobs
                set status = 'queued', run_after = ${runAfter}, buffer_job_id = null, worker_id = null,
                    last_worker_id = ${lastWorkerId}, progress = 0, phase = null, updated_at = now()
              where id = ${jobId}`;
}

function finish(jobId: string, status: "failed" | "cancelled", error: string, info: ErrorInfo | null) {
  const infoSql = info ? sql`, error_info = ${jsonb(info)}` : sql``;
  return sql`update jobs set status = ${status}, error = ${error}${infoSql}, finished_at = now(), updated_at = now()
              where id = ${jobId}`;
}
