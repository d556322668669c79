import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const appDir = fileURLToPath(new URL("../../", import.meta.url));
const repoDir = path.resolve(appDir, "../..");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (!entry.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The end-to-end tests run the BUILT worker (`node dist/main.js`), like production. Rebuild it
 * when a source file is newer than the build, so a test never exercises stale code; the other
 * packages' builds are checked, not made (turbo's `test` task builds them first).
 */
export default function setup() {
  const main = path.join(appDir, "dist/main.js");
  if (!existsSync(main) || newestMtime(path.join(appDir, "src")) > statSync(main).mtimeMs) {
    execFileSync(process.execPath, [path.join(appDir, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
      cwd: appDir,
      stdio: "inherit",
    });
  }
  for (const pkg of ["packages/contract/dist/index.js", "packages/testing/dist/worker-process.js", "apps/orchestrator/dist/main.js"]) {
    if (!existsSync(path.join(repoDir, pkg))) {
      throw new Error(`${pkg} is missing: run \`pnpm build\` (or \`pnpm -C ${pkg.split("/dist")[0]} build\`) first`);
    }
  }
}
