import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureFreshBuild } from "@fleet/testing/fresh-build";
import { provideTestPostgres } from "@fleet/testing/postgres-global-setup";

const repoDir = fileURLToPath(new URL("../../../../", import.meta.url));

/**
 * The CLI's tests start the BUILT orchestrator and worker (and `./fleetw start` runs the built
 * CLI): rebuild any of them whose sources are newer than its build, so a direct `vitest run`
 * after an edit never tests stale code. Then PostgreSQL: TEST_DATABASE_URL, Docker, or one
 * started from npm-shipped binaries.
 */
export default function setup(): Promise<() => Promise<void>> {
  for (const app of ["apps/orchestrator", "apps/worker", "apps/cli"]) ensureFreshBuild(path.join(repoDir, app));
  return provideTestPostgres();
}
