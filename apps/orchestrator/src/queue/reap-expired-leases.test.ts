import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { createDatabase, queryRows } from "../db/client.js";
import { appTest, claimJob, createJobId, heartbeat } from "../test-support/harness.js";
import { markWorkersOffline } from "./mark-workers-offline.js";
import { reapExpiredLeases } from "./reap-expired-leases.js";

appTest("two orchestrators reaping the same database at once requeue each expired job exactly once", async ({ t }) => {
  // A second "replica": its own pool on the same database.
  const other = await createDatabase(t.config, t.log);
  try {
    for (const w of ["a", "b", "c"]) await heartbeat(t.app, w, { capacity: 20 });
    for (let i = 0; i < 60; i++) await createJobId(t.app);
    for (let i = 0; i < 60; i++) await claimJob(t.app, ["a", "b", "c"][i % 3]!);
    await t.db.db.execute(sql`update buffer_jobs set lease_expires_at = now() - interval '1 second'`);
    await t.db.db.execute(sql`update buffer_workers set last_heartbeat = now() - interval '1 hour'`);

    // Small batches so the two replicas interleave instead of one taking everything.
    const reapAll = async (db: typeof t.db.db) => {
      const reaped: string[] = [];
      for (;;) {
        const batch = await reapExpiredLeases(db, 5, 7);
        reaped.push(...batch.map((r) => r.buffer_job_id));
        if (batch.length === 0) return reaped;
      }
    };
    const [first, second, offlineA, offlineB] = await Promise.all([
      reapAll(t.db.db),
      reapAll(other.db),
      markWorkersOffline(t.db.db, 30),
      markWorkersOffline(other.db, 30),
    ]);

    expect([...first, ...second].sort()).toHaveLength(60);
    expect(new Set([...first, ...second]).size).toBe(60);
    expect(offlineA.length + offlineB.length).toBe(3);
    const [state] = await queryRows<{ queued_once: number; interrupted: number; running: number }>(
      t.db.db,
      sql`select (select count(*)::int from jobs where status = 'queued' and interruptions = 1 and buffer_job_id is null) as queued_once,
                 (select count(*)::int from buffer_jobs where status = 'interrupted') as interrupted,
                 (select count(*)::int from buffer_jobs where status = 'running') as running`,
    );
    expect(state).toEqual({ queued_once: 60, interrupted: 60, running: 0 });
  } finally {
    await other.close();
  }
});
