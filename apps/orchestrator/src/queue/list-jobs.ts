import type { JobStatus } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import type { JobRow } from "../views/job-view.js";
import { visibleTo, type JobScope } from "./job-scope.js";

/**
 * Newest first, keyset-paged on (created_at, id). The cursor carries created_at as PostgreSQL's
 * own text, because a JS Date would drop the microseconds and skip or repeat rows on a page edge.
 * The ORDER BY spells `nulls last` to match jobs_created_at_idx / jobs_status_created_at_idx:
 * plain `desc` means `nulls first`, and PostgreSQL then sorts the whole table instead of reading
 * the index (0.5 s instead of 0.2 ms at 500k jobs), though the columns are never null.
 */
export async function listJobs(
  db: Executor,
  options: { scope: JobScope; status?: JobStatus; limit: number; after?: { createdAt: string; id: string } },
): Promise<{ jobs: JobRow[]; next: { createdAt: string; id: string } | null }> {
  const filters = [visibleTo(options.scope)];
  if (options.status) filters.push(sql`status = ${options.status}`);
  if (options.after) filters.push(sql`(created_at, id) < (${options.after.createdAt}::timestamptz, ${options.after.id}::uuid)`);
  const rows = await queryRows<JobRow & { created_at_text: string }>(
    db,
    sql`select *, created_at::text as created_at_text from jobs
         where ${sql.join(filters, sql` and `)}
         order by created_at desc nulls last, id desc nulls last
         limit ${options.limit + 1}`,
  );
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  const next = rows.length > options.limit && last ? { createdAt: last.created_at_text, id: last.id } : null;
  return { jobs: page, next };
}
