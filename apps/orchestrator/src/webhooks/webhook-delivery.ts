import type { WebhookEvent } from "@fleet/contract";
import { systemResolve, type Resolve } from "@fleet/egress";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { Executor } from "../db/client.js";
import { startLoop, type Loop } from "../loop.js";
import type { Counters } from "../metrics.js";
import { getJob } from "../queue/get-job.js";
import { ALL_JOBS } from "../queue/job-scope.js";
import { toJobView } from "../views/job-view.js";
import { claimDueDeliveries, type DeliveryRow } from "./claim-due-deliveries.js";
import { findWebhookSecret } from "./find-webhook-secret.js";
import { markDelivered, markFailedAttempt } from "./record-delivery-result.js";
import { sendWebhook } from "./send-webhook.js";
import { createWebhookDispatcher } from "./webhook-dispatcher.js";

type WebhookConfig = Pick<Config, "WEBHOOK_SECRET" | "WEBHOOK_RETRY_WINDOW_SEC" | "WEBHOOK_TIMEOUT_SEC" | "ALLOW_PRIVATE_NETWORK_URLS">;

export interface WebhookDelivery extends Loop {
  /** Deliveries being sent right now. */
  readonly inFlight: number;
}

/**
 * Sends terminal webhooks from the `webhook_deliveries` outbox. Each delivery runs on its own
 * (up to `concurrency` at once) with a hard timeout, so a slow or dead endpoint holds one slot
 * for at most WEBHOOK_TIMEOUT_SEC and never delays other deliveries, the API or the reaper.
 */
export function startWebhookDelivery(
  db: Executor,
  config: WebhookConfig,
  log: Logger,
  options: { concurrency?: number; pollMs?: number; counters?: Counters; resolve?: Resolve } = {},
): WebhookDelivery {
  const concurrency = options.concurrency ?? 16;
  const timeoutMs = config.WEBHOOK_TIMEOUT_SEC * 1000;
  const dispatcher = createWebhookDispatcher({
    allowPrivate: config.ALLOW_PRIVATE_NETWORK_URLS,
    timeoutMs,
    resolve: options.resolve ?? systemResolve,
  });
  const webhookLog = log.child({ component: "webhooks" });
  const inFlight = new Set<Promise<void>>();

  const deliver = async (row: DeliveryRow): Promise<void> => {
    const job = await getJob(db, row.job_id, ALL_JOBS);
    if (!job) return;
    // Each client's deliveries carry its own secret, so one client cannot forge another's.
    const secret = await findWebhookSecret(db, job.client_id, config.WEBHOOK_SECRET);
    const result = await sendWebhook(
      dispatcher,
      row.url,
      { event: row.event as WebhookEvent, delivered_at: new Date().toISOString(), job: toJobView(job) },
      { secret, timeoutMs },
    );
    const fields = { deliveryId: row.id, jobId: row.job_id, event: row.event, attempt: row.attempts };
    if (result.ok) {
      await markDelivered(db, row.id, result.statusCode);
      if (options.counters) options.counters.webhooksDelivered++;
      webhookLog.info({ ...fields, statusCode: result.statusCode }, "webhook_delivered");
      return;
    }
    const status = await markFailedAttempt(db, row.id, result, config.WEBHOOK_RETRY_WINDOW_SEC);
    if (status === "failed") {
      if (options.counters) options.counters.webhooksFailed++;
      webhookLog.error({ ...fields, statusCode: result.statusCode, err: result.err }, "webhook_given_up");
    } else {
      webhookLog.warn({ ...fields, statusCode: result.statusCode, err: result.err }, "webhook_delivery_failed");
    }
  };

  const loop = startLoop("webhooks", options.pollMs ?? 1000, webhookLog, async () => {
    // The lease must outlast the request, or a slow delivery would be sent twice.
    const due = await claimDueDeliveries(db, concurrency - inFlight.size, config.WEBHOOK_TIMEOUT_SEC + 30);
    for (const row of due) {
      const task = deliver(row)
        .catch((err: unknown) => webhookLog.error({ err, deliveryId: row.id }, "webhook_delivery_crashed"))
        .finally(() => {
          inFlight.delete(task);
          loop.nudge();
        });
      inFlight.add(task);
    }
  });

  return {
    nudge: () => loop.nudge(),
    get inFlight() {
      return inFlight.size;
    },
    async stop() {
      await loop.stop();
      await Promise.allSettled([...inFlight]);
      await dispatcher.close();
    },
  };
}
