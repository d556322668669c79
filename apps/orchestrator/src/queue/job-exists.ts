import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/**
 * Whether a job exists, whoever's it is: a main-tier final report that finds no attempt of its
 * worker asks this to answer 404 for a job that never existed and 409 `lease_lost` for one the
 * worker no longer holds. Unscoped because the worker API sees every client's jobs; a
 * primary-key lookup, run only on that refused path.
 */
export async function jobExists(db: Executor, jobId: string): Promise<boolean> {
  const [row] = await queryRows<{ id: string }>(db, sql`select id from jobs where id = ${jobId}`);
  return row !== undefined;
}
