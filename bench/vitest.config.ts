import { defineConfig } from "vitest/config";

export default defineConfig({
  // The smoke test runs every benchmark with a tiny count against the built orchestrator and
  // worker (their dist) and a real PostgreSQL; it asserts that each one produces numbers, never
  // how fast they are.
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 1,
    globalSetup: ["./src/test-support/global-setup.ts"],
  },
});
