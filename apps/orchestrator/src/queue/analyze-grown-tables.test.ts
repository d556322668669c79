import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { appTest } from "../test-support/harness.js";
import { analyzeGrownTables } from "./analyze-grown-tables.js";

describe("ANALYZE while the queue is young", () => {
  appTest("a queue table that more than doubled since its last ANALYZE is analysed once; a small change is left to autovacuum", async ({ t }) => {
    // Autovacuum stays out of this test's database, so whatever analyses `jobs` is the function.
    await t.db.db.execute(sql`alter table jobs set (autovacuum_enabled = false)`);
    await t.db.db.execute(sql`analyze jobs`);
    await t.db.db.execute(sql`
      insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts)
      select 'http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3 from generate_series(1, 1500)`);
    // The cumulative statistics reach pg_stat_user_tables within about a second of the insert.
    for (let i = 0; ; i++) {
      const [row] = await queryRows<{ n: number }>(t.db.db, sql`select n_mod_since_analyze::int as n from pg_stat_user_tables where relname = 'jobs'`);
      if ((row?.n ?? 0) >= 1500) break;
      if (i > 100) throw new Error("the insert never reached pg_stat_user_tables");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await analyzeGrownTables(t.db.db)).toEqual(["jobs"]);
    const [after] = await queryRows<{ reltuples: number; mods: number }>(
      t.db.db,
      sql`select c.reltuples::int as reltuples, s.n_mod_since_analyze::int as mods
            from pg_class c join pg_stat_user_tables s on s.relid = c.oid where c.relname = 'jobs'`,
    );
    expect(after).toEqual({ reltuples: 1500, mods: 0 });
    // Doubling again takes another 1,500 changes; 200 more are autovacuum's business.
    await t.db.db.execute(sql`update jobs set priority = 1 where id in (select id from jobs limit 200)`);
    expect(await analyzeGrownTables(t.db.db)).toEqual([]);
  });
});
