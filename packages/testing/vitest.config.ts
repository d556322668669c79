import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    // postgres.test.ts needs a server: TEST_DATABASE_URL, Docker, or one from npm-shipped binaries.
    globalSetup: ["./src/test-support/global-setup.ts"],
  },
});
