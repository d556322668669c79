import type { ProgressReport } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import { jsonb } from "./sql-values.js";

export type ProgressOutcome = { kind: "ok"; progress: number } | { kind: "not_found" } | { kind: "lease_lost" };

/**
 * Records progress of a running job. With `buffer_job_id` (Fleet workers) it is fenced to that
 * attempt. Without it, the reporting worker must hold the job — or the job must be held by an
 * original worker: their /generate reports under `WORKER_ID` or the hostname while their loop
 * claimed under `BUFFER_WORKER_ID`, so the id proves nothing either way. That is safe because
 * progress is cosmetic (`greatest()` keeps it from going backwards; terminal outcomes stay fenced).
 *
 * Progress is also the only sign of life an original buffer worker gives while /generate runs, so
 * it renews that attempt's legacy lease — in a second statement, so that neither statement ever
 * holds two row locks (the job here, the attempt there) and none can deadlock with the reaper.
 */
export async function reportProgress(
  db: Executor,
  jobId: string,
  report: ProgressReport,
  legacyLeaseTtlSec: number,
): Promise<ProgressOutcome> {
  const holder = report.buffer_job_id
    ? sql`j.buffer_job_id = ${report.buffer_job_id}`
    : sql`(j.worker_id = ${report.worker_id}
           or exists (select 1 from buffer_workers w where w.worker_id = j.worker_id and w.protocol = 'original'))`;
  const [updated] = await queryRows<{ progress: number; buffer_job_id: string; legacy: boolean | null }>(
    db,
    sql`update jobs j
           set progress = greatest(j.progress, ${report.progress}),
               phase = coalesce(${report.phase ?? null}, j.phase),
               metrics = coalesce(${jsonb(report.metrics)}, j.metrics),
               updated_at = now()
         where j.id = ${jobId} and j.status = 'running' and ${holder}
     returning j.progress, j.buffer_job_id,
               (select b.legacy_lease from buffer_jobs b where b.buffer_job_id = j.buffer_job_id) as legacy`,
  );
  if (updated) {
    if (updated.legacy) {
      await db.execute(
        sql`update buffer_jobs
               set lease_expires_at = greatest(lease_expires_at, now() + make_interval(secs => ${legacyLeaseTtlSec}))
             where buffer_job_id = ${updated.buffer_job_id} and status = 'running' and legacy_lease`,
      );
    }
    return { kind: "ok", progress: Number(updated.progress) };
  }
  const [exists] = await queryRows<{ id: string }>(db, sql`select id from jobs where id = ${jobId}`);
  return exists ? { kind: "lease_lost" } : { kind: "not_found" };
}

/**
 * The attempt a final report on /progress speaks for: the one the reporting worker holds, found
 * by job and worker id (the main tier sends no buffer_job_id). Its latest attempt of the job, so
 * a repeat of an applied report is recognised as a repeat, and an old attempt's report is fenced
 * by `reportAttemptStatus` like a late /status.
 */
export async function findReportedAttempt(db: Executor, jobId: string, workerId: string): Promise<string | null> {
  const [row] = await queryRows<{ buffer_job_id: string }>(
    db,
    sql`select buffer_job_id from buffer_jobs
         where job_id = ${jobId} and worker_id = ${workerId}
         order by claimed_at desc limit 1`,
  );
  return row?.buffer_job_id ?? null;
}
