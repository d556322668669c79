import { defineConfig } from "vitest/config";

// Tests that need a real Prometheus (Debian's `prometheus` package): run by
// scripts/check-observability.sh, which CI calls after installing it; not part of `pnpm test`.
export default defineConfig({
  test: {
    include: ["src/**/*.observability.ts"],
    testTimeout: 180_000,
    hookTimeout: 90_000,
    pool: "forks",
    maxWorkers: 1,
    globalSetup: ["./src/test-support/global-setup.ts"],
  },
});
