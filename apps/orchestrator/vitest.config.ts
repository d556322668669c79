import { defineConfig } from "vitest/config";

export default defineConfig({
  // Workspace packages (@fleet/contract, @fleet/testing) are read from their dist: turbo's test
  // task builds them first (dependsOn ^build).
  test: {
    include: ["src/**/*.test.ts"],
    // Real PostgreSQL, real child processes, a 2-core box shared with other suites.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    // Rebuilds a stale dist/ for the process tests; starts PostgreSQL when none is given.
    globalSetup: ["./src/test-support/global-setup.ts"],
  },
});
