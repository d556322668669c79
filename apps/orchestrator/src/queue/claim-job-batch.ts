import { sql } from "drizzle-orm";
import { queryPrepared, type Executor } from "../db/client.js";
import type { ClaimedJobRow, ClaimOptions } from "./claim-next-job.js";
import { CLAIMED_COLUMNS, FREE_SLOT, QUEUE_ORDER, runnableJob, spillBefore, TAKE_JOB, workerMayClaim, writeAttempts } from "./claim-rules.js";
import { jsonb } from "./sql-values.js";

/** A claim the batch could not settle exactly; `claimNextJob` answers it on its own. */
export const UNDECIDED = "undecided";

/** Per claim, in order: the job it got, null for nothing, or `UNDECIDED`. */
export type BatchClaimAnswer = ClaimedJobRow | null | typeof UNDECIDED;

/**
 * How many runnable jobs a batch of `claims` locks: at least twice as many, rounded up to a power
 * of two. It is written into the statement as a literal, not passed as a parameter, so each size
 * is its own prepared statement (a handful of them) and PostgreSQL keeps the statement's generic
 * plan. With the limit as a parameter, the generic plan had to assume a tenth of the queue would be
 * locked; once the queue grew, that plan looked dearer than planning anew, and PostgreSQL planned
 * the whole statement again on every call (bench/FINDINGS.md F8).
 */
export function candidateLimit(claims: number): number {
  return Math.max(4, 2 ** Math.ceil(Math.log2(2 * claims)));
}

/**
 * Several workers' claims in ONE statement, with the rules `claimNextJob` applies to each one
 * (`ClaimBatcher` sends claims here when they arrive together; the shared SQL is in
 * `claim-rules.ts`):
 *
 * - `worker`: each claim's worker is checked as a lone claim checks it (known, heartbeating, not
 *   draining or quarantined, a free slot, its tier's `spill_before`). A worker's second claim in
 *   the same batch (concurrent claims of a worker with capacity > 1) is left undecided: its slot
 *   depends on what the first one got.
 * - `candidate`: the queue's first `candidateLimit` (≥ 2 × claims) runnable jobs, locked with `skip locked`, in the
 *   order a lone claim reads them (`jobs_runnable_idx`).
 * - `pick`: the claims take candidates one after another, in arrival order, exactly as that many
 *   lone claims in a row would: each the first job it may run (old enough for a buffer worker
 *   while a preferred-tier worker is online) that it did not run last, else the first it may run.
 *   In the common case (`simple`: no claim held back by its tier, no candidate last run by a
 *   claiming worker) that is the k-th claim taking the k-th candidate, one join. Otherwise a
 *   recursive walk (`greedy`) takes them one by one; it costs about 70 µs of PostgreSQL CPU per
 *   claim, so it only runs when the join would answer differently.
 * - A claim is also **undecided** when the candidate list is full (more jobs may wait behind
 *   it) and the claim found nothing it may run, or only a job it ran last: a lone claim might find
 *   a better job further down the queue. It takes nothing here and `claimNextJob` answers it
 *   right after.
 * - `claimed` / `attempt` / `busy`: as in `claimNextJob`, for every picked job at once; the job
 *   rows are reached by primary key (`= any(array(...))`).
 *
 * At ten claims a statement this costs about half the PostgreSQL CPU per claim of lone claims
 * (bench/FINDINGS.md F7): one parse, one executor start, one commit and its WAL flush for all.
 */
export async function claimJobBatch(db: Executor, claims: readonly ClaimOptions[]): Promise<BatchClaimAnswer[]> {
  const input = claims.map((c, ord) => ({
    ord,
    worker_id: c.workerId,
    lease_ttl_sec: c.leaseTtlSec,
    offline_after_sec: c.offlineAfterSec,
    legacy_lease_ttl_sec: c.legacyLeaseTtlSec ?? null,
    spill_after_sec: c.spillAfterSec ?? 0,
  }));
  const offline = sql`r.offline_after_sec`;
  const limit = candidateLimit(claims.length);
  const rows = await queryPrepared<ClaimedJobRow & { ord: number; undecided: boolean }>(
    db,
    `fleet_claim_job_batch_${limit}`,
    sql`
with recursive
request as (
  select r.*, row_number() over (partition by r.worker_id order by r.ord) as occurrence
    from jsonb_to_recordset(${jsonb(input)})
      as r(ord int, worker_id text, lease_ttl_sec float8, offline_after_sec float8, legacy_lease_ttl_sec float8, spill_after_sec float8)
),
worker as materialized (
  select r.ord, r.worker_id, free.slot, r.lease_ttl_sec, r.legacy_lease_ttl_sec,
         (w.protocol = 'original' and r.legacy_lease_ttl_sec is not null) as legacy,
         ${spillBefore(offline, sql`r.spill_after_sec`)} as spill_before,
         row_number() over (order by r.ord) as step
    from request r
    join buffer_workers w on w.worker_id = r.worker_id
    ${FREE_SLOT}
   where r.occurrence = 1
     and w.worker_id = any(array(select worker_id from request))
     and ${workerMayClaim(offline)}
     and free.slot is not null
),
candidate as materialized (
  select j.id, j.created_at, j.last_worker_id,
         row_number() over (order by ${QUEUE_ORDER}) as rank
    from (
      select j.id, j.priority, j.run_after, j.created_at, j.last_worker_id from jobs j
       where ${runnableJob(sql`(select max(spill_before) from worker)`)}
       order by ${QUEUE_ORDER}
       limit ${sql.raw(String(limit))}
         for update skip locked
    ) as j
),
listing as materialized (
  select count(*) >= ${sql.raw(String(limit))} as is_full from candidate
),
simple as materialized (
  select not exists (select 1 from worker where spill_before <> 'infinity')
     and not exists (select 1 from candidate c join worker w on w.worker_id = c.last_worker_id) as yes
),
greedy (step, ord, worker_id, slot, legacy, lease_ttl_sec, legacy_lease_ttl_sec, job_id, undecided, taken) as (
  select 0::bigint, null::int, null::text, null::int, null::boolean, null::float8, null::float8, null::uuid, false, array[]::uuid[]
  union all
  select w.step, w.ord, w.worker_id, w.slot, w.legacy, w.lease_ttl_sec, w.legacy_lease_ttl_sec,
         case when u.undecided then null else best.id end,
         u.undecided,
         case when u.undecided or best.id is null then p.taken else p.taken || best.id end
    from greedy p
    join worker w on w.step = p.step + 1
    cross join listing l
    left join lateral (
      select c.id, c.last_worker_id from candidate c
       where c.created_at <= w.spill_before and c.id <> all(p.taken)
       order by c.last_worker_id is not distinct from w.worker_id, c.rank
       limit 1
    ) as best on true
    cross join lateral (
      select l.is_full and (best.id is null or best.last_worker_id is not distinct from w.worker_id) as undecided
    ) as u
),
pick as (
  select w.step, w.ord, w.worker_id, w.slot, w.legacy, w.lease_ttl_sec, w.legacy_lease_ttl_sec, c.id as job_id, false as undecided
    from worker w join candidate c on c.rank = w.step
   where (select yes from simple)
  union all
  select g.step, g.ord, g.worker_id, g.slot, g.legacy, g.lease_ttl_sec, g.legacy_lease_ttl_sec, g.job_id, g.undecided
    from greedy g
   where not (select yes from simple) and g.ord is not null
),
chosen as materialized (
  select p.*, gen_random_uuid() as buffer_job_id from pick p where p.job_id is not null
),
claimed as (
  update jobs j
     set ${TAKE_JOB}
    from chosen c
   where j.id = any(array(select job_id from chosen)) and j.id = c.job_id
  returning ${CLAIMED_COLUMNS}, c.ord, c.lease_ttl_sec, c.legacy_lease_ttl_sec
),
${writeAttempts(sql`case when legacy then legacy_lease_ttl_sec else lease_ttl_sec end`)}
select c.ord, false as undecided, c.buffer_job_id, c.id as job_id, c.video_url, c.audio_url, c.aspect_ratio, c.resolution,
       c.params, c.video_sha256, c.attempts as attempt, a.lease_expires_at, c.queue_wait_sec
  from claimed c join attempt a using (buffer_job_id)
union all
select p.ord, true, null, null, null, null, null, null, null, null, null, null, null
  from pick p where p.undecided
union all
select r.ord, true, null, null, null, null, null, null, null, null, null, null, null
  from request r where r.occurrence > 1`,
  );
  const answers: BatchClaimAnswer[] = claims.map(() => null);
  for (const { ord, undecided, ...job } of rows) answers[ord] = undecided ? UNDECIDED : job;
  return answers;
}
