import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { test as baseTest } from "vitest";

/** Applies a schema to the database at `url` (the orchestrator passes its real migrations). */
export type MigrateFn = (url: string) => Promise<void>;

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the clone (`WITH (FORCE)`: leftover connections do not block it). */
  drop(): Promise<void>;
}

export interface TestDatabases {
  /** URL of the server's maintenance database (not a clone; do not write to it). */
  serverUrl: string;
  /** A fresh database copied from the migrated template: milliseconds, not a migration run. */
  clone(): Promise<TestDatabase>;
  /** Drops every clone still alive and the template. */
  close(): Promise<void>;
}

interface Server {
  url: string;
  stop(): Promise<void>;
}

// One server per vitest worker (the module is loaded once per worker): TEST_DATABASE_URL, or a
// testcontainers PostgreSQL when a Docker engine answers. With neither, the package's vitest
// globalSetup (postgres-global-setup.ts) has already started one from npm-shipped binaries and
// set TEST_DATABASE_URL.
let serverPromise: Promise<Server> | undefined;

export function dockerLikelyAvailable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync("/var/run/docker.sock");
}

async function startServer(): Promise<Server> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) return { url: given, stop: () => Promise.resolve() };
  if (!dockerLikelyAvailable()) {
    throw new Error(
      "no PostgreSQL for tests: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test), start a Docker engine, or add @fleet/testing's provideTestPostgres() to the package's vitest globalSetup",
    );
  }
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
  const container = await new PostgreSqlContainer("postgres:16-alpine").start();
  return { url: container.getConnectionUri(), stop: async () => void (await container.stop()) };
}

export function getTestServer(): Promise<Server> {
  serverPromise ??= startServer();
  return serverPromise;
}

/** Same server and credentials, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Unique per process and call, so several test runs (and other packages) can share one server. */
function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** One short connection to the server (its maintenance database) for CREATE/DROP DATABASE. */
export async function withAdmin<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Migrates a uniquely named template database once, then hands out clones of it
 * (`CREATE DATABASE … TEMPLATE …`). Takes the migration as a parameter so this package never
 * imports the orchestrator.
 */
export async function createTestDatabases(options: { migrate: MigrateFn; prefix?: string }): Promise<TestDatabases> {
  const server = await getTestServer();
  const prefix = options.prefix ?? "fleet";
  const template = uniqueName(`${prefix}_tmpl`);
  await withAdmin(server.url, (c) => c.query(`create database ${pg.escapeIdentifier(template)}`));
  try {
    await options.migrate(withDatabase(server.url, template));
  } catch (err) {
    await withAdmin(server.url, (c) => c.query(`drop database if exists ${pg.escapeIdentifier(template)} with (force)`));
    throw err;
  }
  const alive = new Set<string>();

  const dropDatabase = async (name: string) => {
    alive.delete(name);
    await withAdmin(server.url, (c) => c.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`));
  };

  return {
    serverUrl: server.url,
    async clone() {
      const name = uniqueName(`${prefix}_t`);
      await withAdmin(server.url, (c) =>
        c.query(`create database ${pg.escapeIdentifier(name)} template ${pg.escapeIdentifier(template)}`),
      );
      alive.add(name);
      return { url: withDatabase(server.url, name), name, drop: () => dropDatabase(name) };
    },
    async close() {
      for (const name of [...alive]) await dropDatabase(name);
      await dropDatabase(template);
    },
  };
}

/**
 * A vitest `test` with two fixtures: `testDatabases` (per worker: one migrated template) and
 * `databaseUrl` (per test: a fresh clone, dropped afterwards).
 *
 *   const dbTest = createDatabaseTest(migratePostgresUrl);
 *   dbTest("claims once", async ({ databaseUrl }) => { ... });
 */
export function createDatabaseTest(migrate: MigrateFn) {
  return baseTest
    // eslint-disable-next-line no-empty-pattern -- vitest reads fixture dependencies from the pattern
    .extend("testDatabases", { scope: "worker" }, async ({}, { onCleanup }) => {
      const databases = await createTestDatabases({ migrate });
      onCleanup(() => databases.close());
      return databases;
    })
    .extend("databaseUrl", async ({ testDatabases }, { onCleanup }) => {
      const database = await testDatabases.clone();
      onCleanup(() => database.drop());
      return database.url;
    });
}
