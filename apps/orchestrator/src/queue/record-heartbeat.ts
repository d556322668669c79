import type { HeartbeatRequest } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { queryPrepared, type Executor } from "../db/client.js";
import { jsonb, uuidArray } from "./sql-values.js";

export interface HeartbeatOutcome {
  drain: boolean;
  cancel: string[];
  lost: string[];
}

/**
 * One statement per heartbeat (the benchmark target is thousands per second): upsert the worker
 * (auto-register, `last_heartbeat = now()`), renew the leases of the attempts it holds (every
 * running attempt when `active_jobs` is absent, as the original workers send none — unless such a
 * worker says it is idle), and compute
 * the reply: attempts to abort because their job was cancelled, listed attempts it no longer
 * holds, and whether an operator asked it to drain.
 */
export async function recordHeartbeat(
  db: Executor,
  workerId: string,
  body: HeartbeatRequest,
  leaseTtlSec: number,
): Promise<HeartbeatOutcome> {
  const active = uuidArray(body.active_jobs);
  const [row] = await queryPrepared<{ drain: boolean; cancel: string[] | string; lost: string[] | string }>(
    db,
    "fleet_record_heartbeat",
    sql`
with upsert as (
  insert into buffer_workers as w (worker_id, status, gpu_class, capacity, error, version, system, engine, last_heartbeat, first_seen)
  values (${workerId}, ${body.status}, ${body.gpu_class ?? null}, ${body.capacity}, ${body.error ?? null},
          ${body.version ?? null}, ${jsonb(body.system)}, ${jsonb(body.engine)}, now(), now())
  on conflict (worker_id) do update
     set status = excluded.status,
         gpu_class = coalesce(excluded.gpu_class, w.gpu_class),
         capacity = excluded.capacity,
         error = excluded.error,
         version = coalesce(excluded.version, w.version),
         system = coalesce(excluded.system, w.system),
         engine = coalesce(excluded.engine, w.engine),
         last_heartbeat = now()
  returning w.drain_requested
),
renewed as (
  update buffer_jobs b
     set lease_expires_at = now() + make_interval(secs => ${leaseTtlSec})
   where b.worker_id = ${workerId} and b.status = 'running'
     and (${active} is null or b.buffer_job_id = any(${active}))
     -- An original worker (no active_jobs) only says idle between jobs: what it still "holds" was
     -- lost in a restart or an unsent report, so let that lease run out instead of renewing it forever.
     and (${active} is not null or ${body.status} <> 'idle')
  returning b.buffer_job_id, b.job_id
)
select (select drain_requested from upsert) as drain,
       coalesce((select array_agg(r.buffer_job_id::text) from renewed r join jobs j on j.id = r.job_id
                  where j.cancel_requested), '{}') as cancel,
       coalesce((select array_agg(a::text) from unnest(${active}) as a
                  where a not in (select buffer_job_id from renewed)), '{}') as lost`,
  );
  return { drain: row?.drain ?? false, cancel: textArray(row?.cancel), lost: textArray(row?.lost) };
}

/** text[] arrives parsed from pg, but PGlite may hand back the literal; accept both. */
function textArray(value: string[] | string | undefined): string[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value;
  const inner = value.replace(/^\{|\}$/g, "");
  return inner === "" ? [] : inner.split(",");
}
