import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(p));
    else if (!entry.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Process tests run a package's BUILT entry (`node dist/main.js`), like production. For a vitest
 * `globalSetup`: rebuild the package (its own `tsc -p tsconfig.build.json`) when a non-test
 * source file is newer than the built entry, so a direct `vitest run` after an edit never tests
 * stale code. Under turbo the build already ran and this is a stat walk.
 */
export function ensureFreshBuild(packageDir: string, entry = "dist/main.js"): void {
  const built = path.join(packageDir, entry);
  if (existsSync(built) && newestSourceMtime(path.join(packageDir, "src")) <= statSync(built).mtimeMs) return;
  const tsc = path.join(packageDir, "node_modules/typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: packageDir, stdio: "inherit" });
  if (!existsSync(built)) throw new Error(`${built} is missing after building ${packageDir}`);
}
