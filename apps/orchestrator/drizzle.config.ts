import { defineConfig } from "drizzle-kit";

// Generation only diffs the schema files against drizzle/meta; it never connects to a database.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema/index.ts",
  out: "./drizzle",
});
