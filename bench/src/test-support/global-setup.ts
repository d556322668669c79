import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureFreshBuild } from "@fleet/testing/fresh-build";
import { provideTestPostgres } from "@fleet/testing/postgres-global-setup";

const repoDir = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * The smoke test runs the built orchestrator and worker: rebuild either when its sources are
 * newer. Then PostgreSQL, like every package's tests: BENCH_DATABASE_URL or TEST_DATABASE_URL,
 * a Docker engine, or a server started from the npm-shipped binaries for the run.
 */
export default function setup(): Promise<() => Promise<void>> {
  ensureFreshBuild(path.join(repoDir, "apps/orchestrator"));
  ensureFreshBuild(path.join(repoDir, "apps/worker"));
  if (process.env.BENCH_DATABASE_URL) return Promise.resolve(() => Promise.resolve());
  return provideTestPostgres();
}
