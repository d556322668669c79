import { describeEnvIssues, emptyAsUnset, envBoolean } from "@fleet/runtime";
import { z } from "zod";

const Seconds = (fallback: number) => z.coerce.number().positive().max(86_400).default(fallback);
const Count = (fallback: number) => z.coerce.number().int().min(1).max(1000).default(fallback);

/** A comma-separated list; blanks between commas are dropped. */
const KeyList = z
  .string()
  .default("")
  .transform((v) =>
    v
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k.length > 0),
  );

export const ConfigSchema = z.object({
  /** Unset: embedded PGlite in DATA_DIR (the newcomer's default). */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional(),
  DATA_DIR: z.string().min(1).default("./.data/orchestrator"),
  /** Pool size for DATABASE_URL; the long-polling claims do not hold a connection while waiting. */
  DATABASE_POOL_MAX: z.coerce.number().int().min(2).max(500).default(20),
  HOST: z.string().min(1).default("0.0.0.0"),
  PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
  INTERNAL_API_KEY: z.string().min(8, "must be at least 8 characters"),
  /** Each entry becomes a client at start (a bootstrap); `fleet keys create` makes more without a restart. */
  PUBLIC_API_KEYS: KeyList,
  /**
   * How long a key or worker-token lookup is remembered; a revocation takes effect on other
   * replicas within this many seconds (at once on the one that revoked). 0 looks up every request.
   */
  AUTH_CACHE_SEC: z.coerce.number().min(0).max(60).default(5),
  WORKER_OFFLINE_AFTER_SEC: Seconds(30),
  LEASE_TTL_SEC: Seconds(30),
  /**
   * Lease of a job claimed by an original buffer worker, which sends nothing while /generate runs
   * except progress. Its loop gives /generate 600 s before it reports a failure itself, and the
   * report has 15 s of its own; 660 covers both with room for a slow upload's last retry.
   */
  LEGACY_LEASE_TTL_SEC: Seconds(660),
  /**
   * How long a job waits for a preferred-tier (main, transient, expensive) worker before a buffer
   * worker may take it. Only matters while a preferred worker is online; see README "Tiers".
   */
  BUFFER_SPILL_AFTER_SEC: z.coerce.number().min(0).max(86_400).default(30),
  /** Told to workers in every heartbeat reply. */
  HEARTBEAT_INTERVAL_SEC: Seconds(5),
  MAX_ATTEMPTS: Count(3),
  MAX_INTERRUPTIONS: Count(5),
  RETRY_BACKOFF_BASE_SEC: Seconds(10),
  QUARANTINE_AFTER_FAILURES: Count(3),
  QUARANTINE_SEC: Seconds(600),
  REAPER_INTERVAL_SEC: Seconds(2),
  /** Unset: webhooks go out unsigned (a warning is logged at start). */
  WEBHOOK_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  /** How long a failing webhook keeps being retried before it is given up. */
  WEBHOOK_RETRY_WINDOW_SEC: z.coerce.number().min(1).max(7 * 86_400).default(3600),
  WEBHOOK_TIMEOUT_SEC: Seconds(10),
  ALLOW_PRIVATE_NETWORK_URLS: envBoolean(false),
  /** Unset: /metrics is open to anyone who can reach the port (firewall it). */
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** How old the database gauges on /metrics may be; scrapes never query. */
  METRICS_REFRESH_SEC: Seconds(5),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_PRETTY: envBoolean(false),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * Reads and validates the settings once (main.ts calls it; tests pass their own object).
 * Empty strings count as unset, as they do in docker-compose `VAR=` lines.
 */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  return parseEnv(ConfigSchema, source);
}

const DatabaseConfigSchema = ConfigSchema.pick({ DATABASE_URL: true, DATA_DIR: true, DATABASE_POOL_MAX: true });
export type DatabaseConfig = z.infer<typeof DatabaseConfigSchema>;

/** The db:migrate script needs the database settings only, not the API keys. */
export function loadDatabaseConfig(source: Record<string, string | undefined> = process.env): DatabaseConfig {
  return parseEnv(DatabaseConfigSchema, source);
}

function parseEnv<S extends z.ZodObject>(schema: S, source: Record<string, string | undefined>): z.infer<S> {
  const present = Object.fromEntries(
    Object.keys(schema.shape)
      .map((name) => [name, source[name]] as const)
      .filter(([, value]) => emptyAsUnset(value) !== undefined),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(describeEnvIssues(parsed.error.issues, source));
  }
  return parsed.data;
}
