import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    // The fault suite bounds itself (FAULT_DEADLINE_SEC, 8 min) and the fuzz has a time budget;
    // these only catch a harness that hangs anyway.
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Both suites load the 2-core box on their own: one file at a time.
    fileParallelism: false,
    maxWorkers: 1,
    globalSetup: ["./src/test-support/global-setup.ts"],
  },
});
