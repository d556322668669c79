import pg from "pg";
import { expect } from "vitest";
import { createDatabaseTest, getTestServer } from "./postgres.js";

let migrations = 0;
const dbTest = createDatabaseTest(async (url) => {
  migrations++;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("create table notes (id serial primary key, body text not null)");
  await client.end();
});

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

async function databaseExists(name: string): Promise<boolean> {
  const server = await getTestServer();
  const rows = await query<{ n: number }>(server.url, `select count(*)::int as n from pg_database where datname = '${name}'`);
  return rows[0]?.n === 1;
}

dbTest("each test gets a migrated clone of its own", async ({ databaseUrl }) => {
  await query(databaseUrl, "insert into notes (body) values ('first test')");
  expect(await query(databaseUrl, "select body from notes")).toEqual([{ body: "first test" }]);
});

dbTest("a second test does not see the first test's rows, and the template was migrated once", async ({ databaseUrl }) => {
  expect(await query(databaseUrl, "select body from notes")).toEqual([]);
  expect(migrations).toBe(1);
});

dbTest("a dropped clone is gone from the server", async ({ testDatabases }) => {
  const clone = await testDatabases.clone();
  expect(await databaseExists(clone.name)).toBe(true);
  await clone.drop();
  expect(await databaseExists(clone.name)).toBe(false);
});
