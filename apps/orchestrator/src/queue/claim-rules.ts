import { sql, type SQL } from "drizzle-orm";

/**
 * The SQL that the lone claim (`claimNextJob`) and the batch (`claimJobBatch`) share, so the rules
 * of who may take which job are written once. Each fragment names the aliases it expects: `w` for
 * the claiming worker's row, `j` for a job, `c` for the chosen (job, worker, attempt id).
 * Per-claim values come in as SQL: a parameter in the lone claim, a column of the batch's input.
 */

/** The worker row `alias` may take work: heartbeating within the window, not draining, not quarantined. */
export function workerMayClaim(offlineAfterSec: SQL, alias = "w"): SQL {
  const w = sql.raw(alias);
  return sql`${w}.last_heartbeat > now() - make_interval(secs => ${offlineAfterSec})
     and ${w}.status <> 'draining'
     and not ${w}.drain_requested
     and (${w}.quarantined_until is null or ${w}.quarantined_until <= now())`;
}

/**
 * The newest `created_at` a job may have for worker `w` to take it: a buffer-tier worker only takes
 * jobs older than `spillAfterSec` while a preferred-tier worker could take them; everyone else (and
 * a buffer worker when no preferred one is online) takes any job. The question is asked through an
 * index that holds only non-buffer workers, so a buffer-only fleet pays one probe of an empty index.
 */
export function spillBefore(offlineAfterSec: SQL, spillAfterSec: SQL): SQL {
  return sql`case when w.tier = 'buffer' and exists (
                select 1 from buffer_workers p
                 where p.tier <> 'buffer'
                   and ${workerMayClaim(offlineAfterSec, "p")})
              then now() - make_interval(secs => ${spillAfterSec})
              else 'infinity'::timestamptz end`;
}

/**
 * `free.slot`: worker `w`'s lowest slot below its capacity with no running attempt, null when it
 * is full. The unique (worker_id, slot) index on running attempts turns a racing claim of the same
 * worker for the same slot into an error instead of an over-commitment.
 */
export const FREE_SLOT = sql`cross join lateral (
      select min(s.slot) as slot
        from generate_series(0, w.capacity - 1) as s(slot)
       where not exists (select 1 from buffer_jobs b
                          where b.worker_id = w.worker_id and b.status = 'running' and b.slot = s.slot)
    ) as free`;

/** The queue's order: priority first, then the job due first, then the oldest. */
export const QUEUE_ORDER = sql`j.priority desc nulls last, j.run_after, j.created_at`;

/** A job `j` a worker may start now, given its `spill_before`. */
export function runnableJob(spillBeforeValue: SQL): SQL {
  return sql`j.status = 'queued' and j.run_after <= now() and j.created_at <= ${spillBeforeValue}`;
}

/** The claim's write to job `j` from choice `c`: running, one more attempt, held by the worker. */
export const TAKE_JOB = sql`status = 'running',
         attempts = j.attempts + 1,
         buffer_job_id = c.buffer_job_id,
         worker_id = c.worker_id,
         started_at = coalesce(j.started_at, now()),
         updated_at = now()`;

/** What `claimed` returns of job `j` and choice `c`, for the attempt row and the worker's reply. */
export const CLAIMED_COLUMNS = sql`j.id, j.video_url, j.audio_url, j.aspect_ratio, j.resolution, j.params, j.video_sha256, j.attempts,
            c.buffer_job_id, c.worker_id, c.slot, c.legacy,
            extract(epoch from now() - greatest(j.created_at, j.run_after))::float8 as queue_wait_sec`;

/**
 * The `attempt` and `busy` CTEs after `claimed`: each claimed job gets its running attempt row,
 * whose id is the fencing token, with a lease of `leaseSec`; an original buffer worker's row reads
 * `busy` at once (it sends nothing until the job ends, and the operators' query must not show it
 * idle or offline meanwhile; Fleet workers say so themselves, so their claims write no worker row).
 */
export function writeAttempts(leaseSec: SQL): SQL {
  return sql`attempt as (
  insert into buffer_jobs (buffer_job_id, job_id, worker_id, slot, status, attempt, claimed_at, lease_expires_at, legacy_lease)
  select buffer_job_id, id, worker_id, slot, 'running', attempts, now(), now() + make_interval(secs => ${leaseSec}), legacy
    from claimed
  returning buffer_job_id, lease_expires_at
),
busy as (
  update buffer_workers w set status = 'busy'
    from claimed c
   where w.worker_id = c.worker_id and c.legacy and w.status <> 'busy'
)`;
}
