import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoDir = fileURLToPath(new URL("../../../../", import.meta.url));

/**
 * The suites run the BUILT orchestrator and worker, like production. turbo's test task builds
 * them first (dependsOn ^build); a bare `vitest run` gets a clear message instead of a spawn error.
 */
export default function setup(): void {
  for (const built of [
    "packages/contract/dist/index.js",
    "packages/testing/dist/orchestrator-process.js",
    "apps/orchestrator/dist/main.js",
    "apps/orchestrator/dist/index.js",
    "apps/worker/dist/main.js",
  ]) {
    if (!existsSync(path.join(repoDir, built))) {
      throw new Error(`${built} is missing: run \`pnpm build\` (or \`pnpm -C ${built.split("/dist")[0]} build\`) first`);
    }
  }
}
