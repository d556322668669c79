import { dockerLikelyAvailable } from "./postgres.js";
import { startThrowawayPostgres } from "./postgres-cluster.js";

/**
 * For a package's vitest `globalSetup`: the last rung of the tests' PostgreSQL ladder.
 * TEST_DATABASE_URL wins, then a Docker engine (postgres.ts starts a testcontainers server per
 * vitest worker); with neither, one real PostgreSQL from the npm-shipped binaries is started
 * here for the whole run, handed to the test workers through TEST_DATABASE_URL (vitest forks
 * them after global setup, with this process's environment), and stopped by the returned
 * teardown. So no test is ever skipped for want of a server.
 */
export async function provideTestPostgres(): Promise<() => Promise<void>> {
  if (process.env.TEST_DATABASE_URL || dockerLikelyAvailable()) return () => Promise.resolve();
  // Each test file opens pools to its own clones; Debian's default of 100 is tight for a
  // package's whole suite on one server.
  const server = await startThrowawayPostgres({ settings: { max_connections: 300 } });
  process.env.TEST_DATABASE_URL = server.url;
  process.stderr.write(`fleet tests: no TEST_DATABASE_URL and no Docker engine; started PostgreSQL from npm-shipped binaries at ${server.url} (${server.dataDir})\n`);
  return async () => {
    delete process.env.TEST_DATABASE_URL;
    await server.destroy();
  };
}
