import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureFreshBuild } from "@fleet/testing/fresh-build";
import { provideTestPostgres } from "@fleet/testing/postgres-global-setup";

const repoDir = fileURLToPath(new URL("../../../../", import.meta.url));

/**
 * The suites run the BUILT orchestrator and worker, like production: rebuild either when its
 * sources are newer than its build (turbo's test task has built them already; a bare
 * `vitest run` after an edit must not test stale code). The libraries' builds are checked, not
 * made. Then PostgreSQL: TEST_DATABASE_URL, Docker, or one started from npm-shipped binaries.
 */
export default function setup(): Promise<() => Promise<void>> {
  ensureFreshBuild(path.join(repoDir, "apps/orchestrator"));
  ensureFreshBuild(path.join(repoDir, "apps/worker"));
  for (const built of ["packages/contract/dist/index.js", "packages/testing/dist/orchestrator-process.js"]) {
    if (!existsSync(path.join(repoDir, built))) {
      throw new Error(`${built} is missing: run \`pnpm build\` (or \`pnpm -C ${built.split("/dist")[0]} build\`) first`);
    }
  }
  return provideTestPostgres();
}
