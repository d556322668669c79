import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

export async function markDelivered(db: Executor, id: number, statusCode: number): Promise<void> {
  await db.execute(
    sql`update webhook_deliveries set status = 'delivered', delivered_at = now(), last_status_code = ${statusCode},
                                      last_error = null
         where id = ${id}`,
  );
}

/**
 * Schedules the next try with exponential backoff (1 s, 2 s, 4 s ... capped at 5 min, with
 * jitter so a recovered endpoint is not hit by every delivery at once), or gives up once the
 * retry window since the delivery was queued has passed. Returns the new status.
 */
export async function markFailedAttempt(
  db: Executor,
  id: number,
  failure: { statusCode: number | null; error: string },
  retryWindowSec: number,
): Promise<"pending" | "failed"> {
  const [row] = await queryRows<{ status: "pending" | "failed" }>(
    db,
    sql`update webhook_deliveries
           set status = case when now() >= created_at + make_interval(secs => ${retryWindowSec}) then 'failed' else 'pending' end,
               next_attempt_at = now() + make_interval(secs => least(power(2, least(attempts - 1, 16)), 300) * (0.8 + random() * 0.4)),
               last_status_code = ${failure.statusCode},
               last_error = ${failure.error.slice(0, 1000)}
         where id = ${id}
     returning status`,
  );
  return row?.status ?? "failed";
}
