import { fileURLToPath } from "node:url";
import { ensureFreshBuild } from "@fleet/testing/fresh-build";
import { provideTestPostgres } from "@fleet/testing/postgres-global-setup";

const appDir = fileURLToPath(new URL("../../", import.meta.url));

/**
 * The process tests run the BUILT orchestrator (`node dist/main.js`), like production: rebuild it
 * when a source file is newer than the build, so a direct `vitest run` never tests stale code.
 * Then PostgreSQL: TEST_DATABASE_URL, Docker, or one started from npm-shipped binaries.
 */
export default function setup(): Promise<() => Promise<void>> {
  ensureFreshBuild(appDir);
  return provideTestPostgres();
}
