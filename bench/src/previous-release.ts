import type pg from "pg";

/**
 * The A side of the throughput A/B: the claim and success statements of the release before the
 * throughput work (revision 0fed714), verbatim but for drizzle's parameter rendering, run through
 * named prepared statements on a pg pool as the orchestrator ran them. They read and write the
 * current schema, which they share with the B side (no migration came with the change).
 */
const CLAIM = `
with worker as (
  select w.worker_id,
         (select min(s.slot)
            from generate_series(0, w.capacity - 1) as s(slot)
           where not exists (select 1 from buffer_jobs b
                              where b.worker_id = w.worker_id and b.status = 'running' and b.slot = s.slot)
         ) as slot,
         (w.protocol = 'original' and $1::float8 is not null) as legacy,
         case when w.tier = 'buffer' and exists (
                select 1 from buffer_workers p
                 where p.tier <> 'buffer'
                   and p.last_heartbeat > now() - make_interval(secs => $2)
                   and p.status <> 'draining' and not p.drain_requested
                   and (p.quarantined_until is null or p.quarantined_until <= now()))
              then now() - make_interval(secs => $3)
              else 'infinity'::timestamptz end as spill_before
    from buffer_workers w
   where w.worker_id = $4
     and w.last_heartbeat > now() - make_interval(secs => $2)
     and w.status <> 'draining'
     and not w.drain_requested
     and (w.quarantined_until is null or w.quarantined_until <= now())
),
choice as (
  select worker.worker_id, worker.slot, worker.legacy, q.id as job_id, gen_random_uuid() as buffer_job_id
    from worker
    cross join lateral (
      select * from (
        select j.id from jobs j
         where j.status = 'queued' and j.run_after <= now() and j.created_at <= worker.spill_before
           and j.last_worker_id is distinct from worker.worker_id
         order by j.priority desc nulls last, j.run_after, j.created_at
         limit 1
         for update skip locked
      ) as elsewhere
      union all
      select * from (
        select j.id from jobs j
         where j.status = 'queued' and j.run_after <= now() and j.created_at <= worker.spill_before
         order by j.priority desc nulls last, j.run_after, j.created_at
         limit 1
         for update skip locked
      ) as anywhere
      limit 1
    ) as q
   where worker.slot is not null
),
claimed as (
  update jobs j
     set status = 'running',
         attempts = j.attempts + 1,
         buffer_job_id = c.buffer_job_id,
         worker_id = c.worker_id,
         started_at = coalesce(j.started_at, now()),
         updated_at = now()
    from choice c
   where j.id = c.job_id and j.status = 'queued'
  returning j.id, j.video_url, j.audio_url, j.aspect_ratio, j.resolution, j.params, j.attempts,
            c.buffer_job_id, c.worker_id, c.slot, c.legacy,
            extract(epoch from now() - greatest(j.created_at, j.run_after))::float8 as queue_wait_sec
),
attempt as (
  insert into buffer_jobs (buffer_job_id, job_id, worker_id, slot, status, attempt, claimed_at, lease_expires_at, legacy_lease)
  select buffer_job_id, id, worker_id, slot, 'running', attempts, now(),
         now() + make_interval(secs => case when legacy then $1::float8 else $5 end),
         legacy
    from claimed
  returning buffer_job_id, lease_expires_at
),
busy as (
  update buffer_workers w set status = 'busy'
    from claimed c
   where w.worker_id = c.worker_id and c.legacy and w.status <> 'busy'
)
select c.buffer_job_id, c.id as job_id, c.video_url, c.audio_url, c.aspect_ratio, c.resolution, c.params,
       c.attempts as attempt, a.lease_expires_at, c.queue_wait_sec
  from claimed c join attempt a using (buffer_job_id)`;

const COMPLETE = `
with locked as (
  select b.buffer_job_id, b.job_id
    from buffer_jobs b
    join jobs j on j.id = b.job_id
    join buffer_workers w on w.worker_id = b.worker_id
   where b.buffer_job_id = $1 and b.status = 'running'
     and j.status = 'running' and j.buffer_job_id = b.buffer_job_id
     and w.consecutive_failures = 0
     for update of b, j
),
attempt as (
  update buffer_jobs b
     set status = 'succeeded', finished_at = now(), error = $2, error_info = null,
         metrics = $3::jsonb, output_url = $4
    from locked
   where b.buffer_job_id = locked.buffer_job_id
),
job as (
  update jobs j
     set status = 'succeeded', progress = 1, phase = 'completed', output_url = $4, metrics = $3::jsonb,
         error = null, error_info = null, finished_at = now(), updated_at = now()
    from locked
   where j.id = locked.job_id
  returning 1
)
select count(*)::int as applied from job`;

/** The previous release's claim for one worker (capacity slots, tiers and legacy leases as then). */
export async function previousClaim(pool: pg.Pool, workerId: string, leaseTtlSec: number, offlineAfterSec: number): Promise<{ buffer_job_id: string } | null> {
  const { rows } = await pool.query<{ buffer_job_id: string }>({
    name: "previous_claim_next_job",
    text: CLAIM,
    values: [null, offlineAfterSec, 0, workerId, leaseTtlSec],
  });
  return rows[0] ?? null;
}

/** The previous release's one-statement success; false means its transaction path would have run. */
export async function previousComplete(pool: pg.Pool, bufferJobId: string, outputUrl: string): Promise<boolean> {
  const { rows } = await pool.query<{ applied: number }>({
    name: "previous_complete_succeeded_attempt",
    text: COMPLETE,
    values: [bufferJobId, null, "{}", outputUrl],
  });
  return (rows[0]?.applied ?? 0) > 0;
}
