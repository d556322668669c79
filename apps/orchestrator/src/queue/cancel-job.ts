import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import type { JobRow } from "../views/job-view.js";
import { visibleTo, type JobScope } from "./job-scope.js";

export type CancelOutcome = { kind: "cancelled" | "requested"; job: JobRow } | { kind: "not_found" } | { kind: "finished"; job: JobRow };

/**
 * Cancels in one conditional update: a queued job ends at once (the trigger queues its webhook);
 * a running one gets `cancel_requested`, which its holder's next heartbeat reply lists under
 * `cancel`. A claim racing this update holds the row lock; the update then re-reads the row as
 * running and asks the worker instead. Another client's job is `not_found`, exactly like a missing one.
 */
export async function cancelJob(db: Executor, jobId: string, scope: JobScope): Promise<CancelOutcome> {
  const [row] = await queryRows<JobRow>(
    db,
    sql`update jobs
           set cancel_requested = true,
               status = case when status = 'queued' then 'cancelled' else status end,
               error = case when status = 'queued' then 'cancelled by client request' else error end,
               finished_at = case when status = 'queued' then now() else finished_at end,
               updated_at = now()
         where id = ${jobId} and status in ('queued', 'running') and ${visibleTo(scope)}
     returning *`,
  );
  if (row) return { kind: row.status === "cancelled" ? "cancelled" : "requested", job: row };
  const [existing] = await queryRows<JobRow>(db, sql`select * from jobs where id = ${jobId} and ${visibleTo(scope)}`);
  return existing ? { kind: "finished", job: existing } : { kind: "not_found" };
}
