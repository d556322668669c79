import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig, loadDatabaseConfig } from "./config.js";

const minimal = { INTERNAL_API_KEY: "0123456789abcdef" };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("loadConfig", () => {
  test("only INTERNAL_API_KEY is required; everything else has the documented default", () => {
    const config = loadConfig(minimal);
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.WEBHOOK_SECRET).toBeUndefined();
    expect(config.METRICS_TOKEN).toBeUndefined();
    expect(config).toMatchObject({
      DATA_DIR: "./.data/orchestrator",
      HOST: "0.0.0.0",
      PORT: 8080,
      PUBLIC_API_KEYS: [],
      WORKER_OFFLINE_AFTER_SEC: 30,
      LEASE_TTL_SEC: 30,
      HEARTBEAT_INTERVAL_SEC: 5,
      MAX_ATTEMPTS: 3,
      MAX_INTERRUPTIONS: 5,
      QUARANTINE_AFTER_FAILURES: 3,
      QUARANTINE_SEC: 600,
      REAPER_INTERVAL_SEC: 2,
      ALLOW_PRIVATE_NETWORK_URLS: false,
      METRICS_REFRESH_SEC: 5,
      LOG_LEVEL: "info",
      LOG_PRETTY: false,
    });
  });

  test("a METRICS_TOKEN shorter than 16 characters is refused by name", () => {
    expect(problemsOf({ ...minimal, METRICS_TOKEN: "short" })).toEqual(["METRICS_TOKEN: must be at least 16 characters"]);
    expect(loadConfig({ ...minimal, METRICS_TOKEN: "a-long-enough-token" }).METRICS_TOKEN).toBe("a-long-enough-token");
  });

  test("a missing INTERNAL_API_KEY is reported by name", () => {
    expect(problemsOf({})).toEqual(["INTERNAL_API_KEY: is required"]);
  });

  test("a bad value names the variable and says what is wrong", () => {
    expect(problemsOf({ ...minimal, PORT: "eighty" })[0]).toMatch(/^PORT: /);
    expect(problemsOf({ ...minimal, DATABASE_URL: "mysql://x" })[0]).toMatch(/^DATABASE_URL: must be a postgres:\/\/ URL/);
    expect(problemsOf({ ...minimal, LEASE_TTL_SEC: "-1" })[0]).toMatch(/^LEASE_TTL_SEC: /);
    expect(problemsOf({ ...minimal, LOG_LEVEL: "loud" })[0]).toMatch(/^LOG_LEVEL: /);
  });

  test("booleans accept only true, false, 1 and 0", () => {
    expect(loadConfig({ ...minimal, ALLOW_PRIVATE_NETWORK_URLS: "true" }).ALLOW_PRIVATE_NETWORK_URLS).toBe(true);
    expect(loadConfig({ ...minimal, ALLOW_PRIVATE_NETWORK_URLS: "1" }).ALLOW_PRIVATE_NETWORK_URLS).toBe(true);
    expect(loadConfig({ ...minimal, ALLOW_PRIVATE_NETWORK_URLS: "false" }).ALLOW_PRIVATE_NETWORK_URLS).toBe(false);
    expect(loadConfig({ ...minimal, ALLOW_PRIVATE_NETWORK_URLS: "0" }).ALLOW_PRIVATE_NETWORK_URLS).toBe(false);
    for (const bad of ["yes", "no", "TRUE", "on"]) {
      expect(problemsOf({ ...minimal, ALLOW_PRIVATE_NETWORK_URLS: bad })).toEqual([
        "ALLOW_PRIVATE_NETWORK_URLS: must be true, false, 1 or 0",
      ]);
    }
  });

  test("PUBLIC_API_KEYS is a comma-separated list with blanks dropped", () => {
    expect(loadConfig({ ...minimal, PUBLIC_API_KEYS: " a-key , ,b-key," }).PUBLIC_API_KEYS).toEqual(["a-key", "b-key"]);
  });

  test("an empty string counts as unset, as in a compose file's `VAR=` line", () => {
    const config = loadConfig({ ...minimal, DATABASE_URL: "", PORT: "" });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.PORT).toBe(8080);
  });

  test("numbers are parsed from strings", () => {
    expect(loadConfig({ ...minimal, REAPER_INTERVAL_SEC: "0.5", MAX_ATTEMPTS: "7" })).toMatchObject({
      REAPER_INTERVAL_SEC: 0.5,
      MAX_ATTEMPTS: 7,
    });
  });

  test("the db:migrate settings do not require the API keys", () => {
    expect(loadDatabaseConfig({ DATABASE_URL: "postgres://u@h/db" })).toMatchObject({ DATABASE_URL: "postgres://u@h/db" });
  });
});
