import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";
import type { JobRow } from "../views/job-view.js";

export async function getJob(db: Executor, jobId: string): Promise<JobRow | null> {
  const [row] = await queryRows<JobRow>(db, sql`select * from jobs where id = ${jobId}`);
  return row ?? null;
}
