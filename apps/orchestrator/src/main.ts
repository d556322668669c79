import { buildApp } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { createDatabase } from "./db/client.js";
import { runMigrations } from "./db/migrate.js";
import { createLogger } from "./logging/create-logger.js";
import { Counters } from "./metrics.js";
import { startReaper } from "./reaper.js";
import { startWebhookDelivery } from "./webhooks/webhook-delivery.js";

/** Channel the webhook trigger NOTIFYs, so a finished job's webhook leaves without waiting a tick. */
const WEBHOOK_PENDING_CHANNEL = "fleet_webhook_pending";

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  // Before the logger exists: one plain message that names the variable, then exit.
  process.stderr.write(`fleet-orchestrator: ${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(1);
}

const log = createLogger(config);
if (!config.WEBHOOK_SECRET) log.warn("webhook_secret_unset_deliveries_unsigned");
if (config.ALLOW_PRIVATE_NETWORK_URLS) log.warn("private_network_urls_allowed");

const db = await createDatabase(config, log);
try {
  await runMigrations(db);
} catch (err) {
  log.fatal({ err }, "db_migrations_failed");
  await db.close();
  process.exit(1);
}

const counters = new Counters();
const app = await buildApp({ config, db, log, counters });
const reaper = startReaper(db.db, config, log, counters);
const webhooks = startWebhookDelivery(db.db, config, log, { counters });
const unlistenWebhooks = await db.listen(WEBHOOK_PENDING_CHANNEL, () => webhooks.nudge());

const address = await app.listen({ host: config.HOST, port: config.PORT });
// `address` matters with PORT=0: launchers read the real port from this line.
log.info({ address, database: db.kind, dataDir: db.kind === "pglite" ? config.DATA_DIR : undefined }, "orchestrator_started");

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    log.warn({ signal }, "orchestrator_forced_exit");
    process.exit(1);
  }
  stopping = true;
  log.info({ signal }, "orchestrator_stopping");
  // Loops first (nothing new starts), then the server (in-flight requests finish), then the pool.
  await Promise.allSettled([reaper.stop(), webhooks.stop(), unlistenWebhooks()]);
  await app.close();
  await db.close();
  log.info("orchestrator_stopped");
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "orchestrator_shutdown_failed");
        process.exit(1);
      },
    );
  });
}
