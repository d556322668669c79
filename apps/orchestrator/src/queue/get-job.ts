import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import type { JobRow } from "../views/job-view.js";
import { visibleTo, type JobScope } from "./job-scope.js";

/** One job, or null when it does not exist or belongs to another client (the same answer). */
export async function getJob(db: Executor, jobId: string, scope: JobScope): Promise<JobRow | null> {
  const [row] = await queryRows<JobRow>(db, sql`select * from jobs where id = ${jobId} and ${visibleTo(scope)}`);
  return row ?? null;
}
