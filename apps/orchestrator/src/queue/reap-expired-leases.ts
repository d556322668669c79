import type { JobStatus } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

export interface ReapedLease {
  job_id: string;
  buffer_job_id: string;
  worker_id: string;
  job_status: JobStatus;
  interruptions: number;
}

/**
 * Ends attempts whose lease ran out (the holder stopped heartbeating) in one statement:
 * the attempt becomes `interrupted`; its job is queued again (an interruption is not a failure),
 * or `failed` once it has been interrupted more than `maxInterruptions` times (a poison job that
 * kills its workers), or `cancelled` if a client had asked and the worker never acknowledged.
 * `skip locked` lets two replicas reap side by side, and skips an attempt whose /status report is
 * being applied right now (that report wins). Batches keep one pass short after a long outage.
 */
export async function reapExpiredLeases(db: Executor, maxInterruptions: number, batchSize = 500): Promise<ReapedLease[]> {
  return queryRows<ReapedLease>(
    db,
    sql`
with expired as (
  select b.buffer_job_id from buffer_jobs b
   where b.status = 'running' and b.lease_expires_at < now()
   order by b.lease_expires_at
   limit ${batchSize}
   for update skip locked
),
interrupted as (
  update buffer_jobs b set status = 'interrupted', finished_at = now(), error = 'lease expired'
    from expired e where b.buffer_job_id = e.buffer_job_id
  returning b.buffer_job_id, b.job_id, b.worker_id
),
jobs_after as (
  update jobs j
     set interruptions = j.interruptions + 1,
         status = case when j.cancel_requested then 'cancelled'
                       when j.interruptions + 1 > ${maxInterruptions} then 'failed'
                       else 'queued' end,
         error = case when j.cancel_requested then 'cancelled by client request (the worker never acknowledged)'
                      when j.interruptions + 1 > ${maxInterruptions}
                        then 'interrupted ' || (j.interruptions + 1) || ' times (its worker stopped heartbeating each time)'
                      else j.error end,
         error_info = case when not j.cancel_requested and j.interruptions + 1 > ${maxInterruptions}
                             then jsonb_build_object('error_type', 'processing_error', 'stage', 'unknown',
                                    'message', 'too many interrupted attempts', 'retryable', false,
                                    'details', jsonb_build_object('interruptions', j.interruptions + 1))
                           else j.error_info end,
         finished_at = case when j.cancel_requested or j.interruptions + 1 > ${maxInterruptions} then now() else null end,
         run_after = now(),
         buffer_job_id = case when j.cancel_requested or j.interruptions + 1 > ${maxInterruptions} then j.buffer_job_id else null end,
         worker_id = case when j.cancel_requested or j.interruptions + 1 > ${maxInterruptions} then j.worker_id else null end,
         last_worker_id = i.worker_id,
         progress = case when j.cancel_requested or j.interruptions + 1 > ${maxInterruptions} then j.progress else 0 end,
         phase = case when j.cancel_requested or j.interruptions + 1 > ${maxInterruptions} then j.phase else null end,
         updated_at = now()
    from interrupted i
   where j.id = i.job_id and j.buffer_job_id = i.buffer_job_id and j.status = 'running'
  returning j.id, j.status, j.interruptions, i.buffer_job_id, i.worker_id
)
select id as job_id, buffer_job_id, worker_id, status as job_status, interruptions from jobs_after`,
  );
}
