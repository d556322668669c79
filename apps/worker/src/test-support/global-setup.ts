import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureFreshBuild } from "@fleet/testing/fresh-build";
import { provideTestPostgres } from "@fleet/testing/postgres-global-setup";

const appDir = fileURLToPath(new URL("../../", import.meta.url));
const repoDir = path.resolve(appDir, "../..");

/**
 * The end-to-end tests run the BUILT worker and orchestrator (`node dist/main.js`), like
 * production: rebuild either when a source file is newer than its build, so a test never
 * exercises stale code. The libraries' builds are checked, not made (turbo's `test` task builds
 * them first). Then PostgreSQL: TEST_DATABASE_URL, Docker, or one started from npm-shipped binaries.
 */
export default async function setup(): Promise<() => Promise<void>> {
  ensureFreshBuild(appDir);
  ensureFreshBuild(path.join(repoDir, "apps/orchestrator"));
  for (const pkg of ["packages/contract/dist/index.js", "packages/testing/dist/worker-process.js"]) {
    if (!existsSync(path.join(repoDir, pkg))) {
      throw new Error(`${pkg} is missing: run \`pnpm build\` (or \`pnpm -C ${pkg.split("/dist")[0]} build\`) first`);
    }
  }
  return provideTestPostgres();
}
