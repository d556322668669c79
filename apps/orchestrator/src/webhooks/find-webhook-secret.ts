import { sql } from "drizzle-orm";
import { queryRows, type Executor } from "../db/client.js";

/**
 * The secret a job's deliveries are signed with: its client's own, or `fallback` (WEBHOOK_SECRET)
 * for clients without one (bootstrap and internal clients) and for jobs created before clients
 * existed, so receivers set up then keep verifying.
 */
export async function findWebhookSecret(db: Executor, clientId: string | null, fallback: string | undefined): Promise<string | undefined> {
  if (clientId === null) return fallback;
  const [row] = await queryRows<{ webhook_secret: string | null }>(db, sql`select webhook_secret from clients where id = ${clientId}`);
  return row?.webhook_secret ?? fallback;
}
