import type { ProgressReport } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import { jsonb } from "./sql-values.js";

export type ProgressOutcome = { kind: "ok"; progress: number } | { kind: "not_found" } | { kind: "lease_lost" };

/**
 * Records progress of a running job, fenced like /status: by `buffer_job_id` when the worker
 * sends it, else the reporting worker must hold the job's current attempt. `greatest()` keeps
 * progress from going backwards when reports arrive out of order.
 */
export async function reportProgress(db: Executor, jobId: string, report: ProgressReport): Promise<ProgressOutcome> {
  const holder = report.buffer_job_id
    ? sql`j.buffer_job_id = ${report.buffer_job_id}`
    : sql`j.worker_id = ${report.worker_id}`;
  const [updated] = await queryRows<{ progress: number }>(
    db,
    sql`update jobs j
           set progress = greatest(j.progress, ${report.progress}),
               phase = coalesce(${report.phase ?? null}, j.phase),
               metrics = coalesce(${jsonb(report.metrics)}, j.metrics),
               updated_at = now()
         where j.id = ${jobId} and j.status = 'running' and ${holder}
     returning j.progress`,
  );
  if (updated) return { kind: "ok", progress: Number(updated.progress) };
  const [exists] = await queryRows<{ id: string }>(db, sql`select id from jobs where id = ${jobId}`);
  return exists ? { kind: "lease_lost" } : { kind: "not_found" };
}
