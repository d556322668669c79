// One ESLint config for the whole workspace: type-aware rules, because a loop-heavy worker
// must never drop a promise on the floor.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/.tools/**", "**/drizzle/**", "**/*.config.*", "docker/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // process.env is read in config.ts only, so every setting is validated once at start.
      "no-restricted-properties": [
        "error",
        { object: "process", property: "env", message: "Read settings through loadConfig() in config.ts." },
      ],
    },
  },
  {
    files: ["**/config.ts", "**/*.test.ts", "**/*.observability.ts", "**/testing/src/**", "bench/**", "scripts/**"],
    rules: { "no-restricted-properties": "off" },
  },
  // The orchestrator's HTTP layer speaks HTTP only: every SQL statement lives in a query module
  // (queue/, admin/, auth/, webhooks/) with a comment saying why it is shaped so. Handlers may hold
  // the database handle (a type) to pass it on, never build or run a query themselves.
  {
    files: ["apps/orchestrator/src/routes/**/*.ts", "apps/orchestrator/src/http/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["drizzle-orm", "drizzle-orm/*", "pg", "@electric-sql/pglite", "**/db/schema", "**/db/schema/*"],
              message: "Routes run no SQL: put the statement in a query module (queue/, admin/, ...) and call it.",
            },
            {
              group: ["**/db/client.js"],
              importNames: ["queryRows", "queryPrepared", "createDatabase"],
              message: "Routes run no SQL: put the statement in a query module (queue/, admin/, ...) and call it.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
