import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startThrowawayPostgres, type ThrowawayPostgres } from "./postgres-cluster.js";

async function select1(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ one: number }>("select 1 as one");
    return rows[0]?.one ?? 0;
  } finally {
    await client.end();
  }
}

describe("startThrowawayPostgres", () => {
  let cluster: ThrowawayPostgres;
  beforeAll(async () => {
    cluster = await startThrowawayPostgres();
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  });

  test("serves queries on its own port, refuses them while stopped, and keeps data across a restart", async () => {
    expect(cluster.port).not.toBe(5432);
    expect(await select1(cluster.url)).toBe(1);
    const client = new pg.Client({ connectionString: cluster.url });
    await client.connect();
    await client.query("create table kept (v int); insert into kept values (42)");
    await client.end();

    await cluster.stop();
    await expect(select1(cluster.url)).rejects.toThrow();
    await cluster.start();

    const again = new pg.Client({ connectionString: cluster.url });
    await again.connect();
    const { rows } = await again.query<{ v: number }>("select v from kept");
    await again.end();
    expect(rows).toEqual([{ v: 42 }]);
  }, 60_000);
});
