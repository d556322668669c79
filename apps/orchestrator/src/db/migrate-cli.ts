import { loadDatabaseConfig } from "../config.js";
import { createLogger } from "../logging/create-logger.js";
import { createDatabase } from "./client.js";
import { runMigrations } from "./migrate.js";

// `pnpm db:migrate`: applies the committed migrations and exits non-zero on any failure, so a
// deploy script can stop before starting a new version on an old schema.
const log = createLogger({ LOG_LEVEL: "info", LOG_PRETTY: false });
try {
  const config = loadDatabaseConfig();
  const handle = await createDatabase(config, log);
  try {
    await runMigrations(handle);
  } finally {
    await handle.close();
  }
  log.info({ database: config.DATABASE_URL ? "postgres" : "pglite" }, "db_migrations_applied");
} catch (err) {
  log.fatal({ err }, "db_migrations_failed");
  process.exitCode = 1;
}
