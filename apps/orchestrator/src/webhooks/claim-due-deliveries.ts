import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

export interface DeliveryRow {
  id: number;
  job_id: string;
  event: string;
  url: string;
  attempts: number;
  created_at: string;
}

/**
 * Takes up to `limit` due deliveries. Pushing `next_attempt_at` past the request timeout works
 * as a lease: another replica (or this one, next tick) will not send the same delivery while it
 * is in flight, and a crash mid-send just makes it due again later. At-least-once, so receivers
 * dedupe on the job id and event.
 */
export async function claimDueDeliveries(db: Executor, limit: number, leaseSec: number): Promise<DeliveryRow[]> {
  if (limit <= 0) return [];
  return queryRows<DeliveryRow>(
    db,
    sql`update webhook_deliveries d
           set next_attempt_at = now() + make_interval(secs => ${leaseSec}), attempts = d.attempts + 1
         where d.id in (select id from webhook_deliveries
                         where status = 'pending' and next_attempt_at <= now()
                         order by next_attempt_at
                         limit ${limit}
                         for update skip locked)
     returning d.id::int as id, d.job_id, d.event, d.url, d.attempts, d.created_at`,
  );
}
