import { sql, type SQL } from "drizzle-orm";
import { queryPrepared, type Executor } from "../db/client.js";
import { CLAIMED_COLUMNS, FREE_SLOT, QUEUE_ORDER, runnableJob, spillBefore, TAKE_JOB, workerMayClaim, writeAttempts } from "./claim-rules.js";

/** What a successful claim hands the worker (plus the job row fields it needs). */
export interface ClaimedJobRow {
  buffer_job_id: string;
  job_id: string;
  video_url: string;
  audio_url: string;
  aspect_ratio: string;
  resolution: string;
  params: Record<string, unknown>;
  /** Null when the job named no hash. */
  video_sha256: string | null;
  attempt: number;
  /** Date from a prepared statement on pg, text through drizzle. */
  lease_expires_at: Date | string;
  /** Seconds the job was claimable before this claim (since it was created or its retry came due). */
  queue_wait_sec: number;
}

export interface ClaimOptions {
  workerId: string;
  leaseTtlSec: number;
  offlineAfterSec: number;
  /**
   * The lease of an original buffer worker's attempt (it heartbeats only between jobs). Null or
   * absent: this claim never grants one (the main-tier route, whose worker heartbeats during jobs).
   */
  legacyLeaseTtlSec?: number | null;
  /** A buffer worker takes a job younger than this only when no preferred-tier worker is online. Default 0. */
  spillAfterSec?: number;
}

/**
 * Claims the best runnable job for one worker in ONE statement, so there is no window between
 * "pick" and "take" for another claimer or a cancel to slip into:
 *
 * - `worker`: the worker must be known, have heartbeated within the offline window, not be
 *   draining or quarantined, and have a free slot (lowest free slot number below `capacity`).
 *   Capacity is enforced by the unique (worker_id, slot) index on running attempts: a racing
 *   second claim of the same worker picks the same slot and fails instead of over-committing.
 *   It also decides routing: a buffer-tier worker only sees jobs created before `spill_before`,
 *   which is "now − spill" while a preferred-tier worker is online and +infinity otherwise. The
 *   question is asked once per claim, through an index that holds only non-buffer workers, so a
 *   buffer-only fleet pays one probe of an empty index and sees every job as before.
 * - `choice`: the job, read through `jobs_runnable_idx` (only queued rows are in it, so a million
 *   finished jobs cost nothing) with `for update skip locked`, so concurrent claimers never wait
 *   on each other and never take the same row. The first branch skips jobs this worker ran last
 *   (a retry should land elsewhere); the second branch only runs when the first found nothing
 *   (Append under LIMIT 1 stops at the first row), so a lone worker still gets its retries.
 * - `claimed` / `attempt`: the job turns running and a new attempt row is written whose id is the
 *   fencing token; `attempts` counts claims. An original buffer worker's attempt gets the legacy
 *   lease, and its row reads `busy` at once: it sends nothing until the job ends, and the
 *   operators' query must not show it idle or offline meanwhile (Fleet workers say so themselves,
 *   so their claims write no worker row).
 *
 * Every row is then written by primary key: the plan must not depend on statistics (on a young
 * database a generic plan once reached the job through `jobs_runnable_idx` and read the whole queue
 * per claim). The free slot is computed once, in a lateral subquery, not once per reference.
 *
 * The claim commits with its WAL flushed like every other write, although a lost claim would only
 * leave its job queued: the worker holding it would run the job with no attempt on record (the
 * fault suite's PostgreSQL crash showed its output uploaded by an attempt the database never had).
 *
 * Returns null when nothing was claimed; `findClaimRefusal` then says why.
 */
export async function claimNextJob(db: Executor, options: ClaimOptions): Promise<ClaimedJobRow | null> {
  const rows = await queryPrepared<ClaimedJobRow>(db, "fleet_claim_next_job", claimNextJobSql(options));
  return rows[0] ?? null;
}

/** The statement itself, so tests and benchmarks can EXPLAIN it. */
export function claimNextJobSql({
  workerId,
  leaseTtlSec,
  offlineAfterSec,
  legacyLeaseTtlSec = null,
  spillAfterSec = 0,
}: ClaimOptions): SQL {
  const offline = sql`${offlineAfterSec}`;
  return sql`
with worker as (
  select w.worker_id, free.slot,
         (w.protocol = 'original' and ${legacyLeaseTtlSec}::float8 is not null) as legacy,
         ${spillBefore(offline, sql`${spillAfterSec}`)} as spill_before
    from buffer_workers w
    ${FREE_SLOT}
   where w.worker_id = ${workerId}
     and ${workerMayClaim(offline)}
     and free.slot is not null
),
choice as (
  select worker.worker_id, worker.slot, worker.legacy, q.id as job_id, gen_random_uuid() as buffer_job_id
    from worker
    cross join lateral (
      select * from (
        select j.id from jobs j
         where ${runnableJob(sql`worker.spill_before`)}
           and j.last_worker_id is distinct from worker.worker_id
         order by ${QUEUE_ORDER}
         limit 1
         for update skip locked
      ) as elsewhere
      union all
      select * from (
        select j.id from jobs j
         where ${runnableJob(sql`worker.spill_before`)}
         order by ${QUEUE_ORDER}
         limit 1
         for update skip locked
      ) as anywhere
      limit 1
    ) as q
),
claimed as (
  update jobs j
     set ${TAKE_JOB}
    from choice c
   where j.id = c.job_id
  returning ${CLAIMED_COLUMNS}
),
${writeAttempts(sql`case when legacy then ${legacyLeaseTtlSec}::float8 else ${leaseTtlSec} end`)}
select c.buffer_job_id, c.id as job_id, c.video_url, c.audio_url, c.aspect_ratio, c.resolution, c.params, c.video_sha256,
       c.attempts as attempt, a.lease_expires_at, c.queue_wait_sec
  from claimed c join attempt a using (buffer_job_id)`;
}
