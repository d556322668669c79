import { sql, type SQL } from "drizzle-orm";
import { describe, expect } from "vitest";
import { createDatabase, queryRows, type Executor } from "../db/client.js";
import { createLogger } from "../logging/create-logger.js";
import { dbTest, testConfig } from "../test-support/harness.js";
import { ALL_JOBS, type JobScope } from "./job-scope.js";
import { listJobs } from "./list-jobs.js";

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}

function nodesOf(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

describe("listJobs", () => {
  dbTest("reads pages from the created_at indexes at 50,000 jobs: an index scan and no Sort, with and without status and cursor, and for one client", async ({ databaseUrl }) => {
    const config = testConfig(databaseUrl, { LOG_LEVEL: "silent" });
    const db = await createDatabase(config, createLogger(config));
    try {
      // Half the jobs belong to one client, the rest to a few others and to no client.
      await db.db.execute(sql`insert into clients (id, name) select ('6f1d2c3b-4a59-4e68-8d7c-9b0a1f2e3d4' || n)::uuid, 'client ' || n from generate_series(0, 4) as n`);
      await db.db.execute(sql`
        insert into jobs (status, video_url, audio_url, aspect_ratio, resolution, max_attempts, created_at, client_id)
        select (array['queued','running','succeeded','failed','cancelled'])[1 + i % 5], 'https://93.184.216.34/v.mp4', 'https://93.184.216.34/a.wav',
               '9:16', '720x1280', 3, now() - make_interval(secs => i),
               case when i % 2 = 0 then '6f1d2c3b-4a59-4e68-8d7c-9b0a1f2e3d40'::uuid
                    when i % 7 = 0 then null
                    else ('6f1d2c3b-4a59-4e68-8d7c-9b0a1f2e3d4' || (1 + i % 4))::uuid end
          from generate_series(1, 50000) as i`);
      await db.db.execute(sql`analyze jobs`);

      // The statement listJobs really sends, captured on its way to the database.
      const sent: SQL[] = [];
      const capturing: Executor = { execute: ((query: SQL) => (sent.push(query), db.db.execute(query))) };
      const scope = ALL_JOBS;
      const first = await listJobs(capturing, { scope, limit: 50 });
      expect(first.jobs).toHaveLength(50);
      const next = first.next ?? undefined;
      expect(next).toBeDefined();
      await listJobs(capturing, { scope, limit: 50, ...(next ? { after: next } : {}) });
      await listJobs(capturing, { scope, limit: 50, status: "failed" });
      await listJobs(capturing, { scope, limit: 50, status: "failed", ...(next ? { after: next } : {}) });
      // A client's own listing (what every client key sends) reads its per-client index.
      const client: JobScope = { kind: "client", clientId: "6f1d2c3b-4a59-4e68-8d7c-9b0a1f2e3d40", bootstrap: false };
      await listJobs(capturing, { scope: client, limit: 50 });
      await listJobs(capturing, { scope: client, limit: 50, ...(next ? { after: next } : {}) });
      expect(sent).toHaveLength(6);

      for (const statement of sent) {
        const [row] = await queryRows<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(db.db, sql`explain (format json) ${statement}`);
        const nodes = nodesOf(row?.["QUERY PLAN"][0].Plan as PlanNode);
        const summary = nodes.map((n) => `${n["Node Type"]}${n["Index Name"] ? `(${n["Index Name"]})` : ""}`).join(" > ");
        expect(nodes.some((n) => n["Node Type"] === "Sort" || n["Node Type"] === "Incremental Sort"), summary).toBe(false);
        expect(nodes.some((n) => /Index/.test(n["Node Type"]) && /^jobs_(status_|client_)?created_at_idx$/.test(n["Index Name"] ?? "")), summary).toBe(true);
      }
    } finally {
      await db.close();
    }
  });
});
