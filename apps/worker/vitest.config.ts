import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    // Integration tests start real processes (orchestrator, worker, ffmpeg) on a shared 2-core box.
    testTimeout: 90_000,
    hookTimeout: 90_000,
    pool: "forks",
    maxWorkers: 2,
    globalSetup: ["./src/test-support/global-setup.ts"],
  },
});
