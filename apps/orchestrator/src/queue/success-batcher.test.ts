import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { appTest, claimJob, createJobId, heartbeat, reportStatus } from "../test-support/harness.js";
import { completeSucceededAttempts, type SuccessReport } from "./complete-succeeded-attempts.js";

const success = (bufferJobId: string, output: string): SuccessReport => ({
  bufferJobId,
  report: { status: "succeeded", output_url: `http://127.0.0.1:9/${output}.mp4`, error: null, metrics: { output } },
});

describe("successes closed together", () => {
  appTest("one statement closes each report's own attempt and job; a repeat, an unknown attempt and a worker with a failure streak are left to the transaction", async ({ t }) => {
    const ids: string[] = [];
    const attempts: string[] = [];
    for (const w of ["w1", "w2", "w3"]) {
      await heartbeat(t.app, w);
      ids.push(await createJobId(t.app));
      attempts.push((await claimJob(t.app, w)).buffer_job_id);
    }
    const [a1, a2, a3] = attempts as [string, string, string];
    await t.db.db.execute(sql`update buffer_workers set consecutive_failures = 1 where worker_id = 'w3'`);
    const unknown = "5f2b8c1e-2d7a-4c1b-9f3e-7a6b5c4d3e2f";

    const applied = await completeSucceededAttempts(t.db.db, [
      success(a1, "first"),
      success(a2, "second"),
      success(a1, "again"),
      success(a3, "third"),
      success(unknown, "nobody"),
    ]);
    expect(applied).toEqual([true, true, false, false, false]);

    const rows = await queryRows<{ id: string; status: string; output_url: string | null; attempt_status: string; attempt_output: string | null }>(
      t.db.db,
      sql`select j.id, j.status, j.output_url, b.status as attempt_status, b.output_url as attempt_output
            from jobs j join buffer_jobs b on b.job_id = j.id order by j.created_at`,
    );
    expect(rows.map((r) => [r.status, r.attempt_status, r.output_url, r.attempt_output])).toEqual([
      ["succeeded", "succeeded", "http://127.0.0.1:9/first.mp4", "http://127.0.0.1:9/first.mp4"],
      ["succeeded", "succeeded", "http://127.0.0.1:9/second.mp4", "http://127.0.0.1:9/second.mp4"],
      ["running", "running", null, null],
    ]);

    // What the batch left is answered by the transaction behind the route.
    const repeat = await reportStatus(t.app, a1, { status: "succeeded", output_url: "http://127.0.0.1:9/again.mp4", error: null, metrics: null });
    expect([repeat.status, repeat.json.job_status]).toEqual([200, "succeeded"]);
    const streak = await reportStatus(t.app, a3, { status: "succeeded", output_url: "http://127.0.0.1:9/third.mp4", error: null, metrics: null });
    expect([streak.status, streak.json.job_status]).toEqual([200, "succeeded"]);
    const [w3] = await queryRows<{ consecutive_failures: number }>(t.db.db, sql`select consecutive_failures from buffer_workers where worker_id = 'w3'`);
    expect(w3?.consecutive_failures).toBe(0);
    const [job1] = await queryRows<{ output_url: string }>(t.db.db, sql`select output_url from jobs where id = ${ids[0]!}`);
    expect(job1?.output_url).toBe("http://127.0.0.1:9/first.mp4");
  });

  appTest("30 workers reporting success at once over HTTP: every job succeeds once, with its own output", async ({ startApp }) => {
    const t = await startApp({ DATABASE_POOL_MAX: "10", LOG_LEVEL: "warn" });
    const workers = Array.from({ length: 30 }, (_, i) => `gpu-${i}`);
    const held: { workerId: string; attempt: string; jobId: string }[] = [];
    for (const w of workers) {
      await heartbeat(t.app, w);
      const jobId = await createJobId(t.app);
      held.push({ workerId: w, jobId, attempt: (await claimJob(t.app, w)).buffer_job_id });
    }
    const replies = await Promise.all(
      held.map((h) => reportStatus(t.app, h.attempt, { status: "succeeded", output_url: `http://127.0.0.1:9/${h.workerId}.mp4`, error: null, metrics: null })),
    );
    expect(replies.map((r) => r.status)).toEqual(held.map(() => 200));
    const rows = await queryRows<{ id: string; status: string; output_url: string; worker_id: string }>(
      t.db.db,
      sql`select id, status, output_url, worker_id from jobs`,
    );
    expect(rows).toHaveLength(30);
    for (const row of rows) {
      expect(row.status).toBe("succeeded");
      expect(row.output_url).toBe(`http://127.0.0.1:9/${row.worker_id}.mp4`);
    }
  });
});
