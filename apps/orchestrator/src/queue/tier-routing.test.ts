import type { MainClaimJobResponse } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import {
  ageHeartbeat,
  appTest,
  call,
  claim,
  createJobId,
  heartbeat,
  mainHeartbeat,
  type TestApp,
} from "../test-support/harness.js";
import { claimNextJobSql } from "./claim-next-job.js";

function mainClaim(t: TestApp, workerId: string) {
  return call<MainClaimJobResponse>(t.app, "POST", "/internal/main/jobs/claim", { body: { worker_id: workerId, worker_type: "main", gpu_class: "RTX 4090" } });
}

/** Makes a job look as if it was submitted `seconds` ago. */
async function ageJob(t: TestApp, jobId: string, seconds: number): Promise<void> {
  await t.db.db.execute(sql`update jobs set created_at = created_at - make_interval(secs => ${seconds}) where id = ${jobId}`);
}

describe("routing between tiers", () => {
  appTest("while a main-tier worker is online and idle, a buffer worker does not take a fresh job; the main-tier worker does", async ({ startApp }) => {
    const t = await startApp({ BUFFER_SPILL_AFTER_SEC: "30" });
    await mainHeartbeat(t.app, "salad-1");
    await heartbeat(t.app, "buffer-local-unified-1");
    const id = await createJobId(t.app);
    expect((await claim(t.app, "buffer-local-unified-1")).json).toEqual({ job: null, reason: "no_job" });
    expect((await mainClaim(t, "salad-1")).json.job?.musetalk_job_id).toBe(id);
  });

  appTest("with no main-tier worker online (never seen, or silent past the offline window), buffer workers take jobs at once", async ({ startApp }) => {
    const t = await startApp({ BUFFER_SPILL_AFTER_SEC: "30", WORKER_OFFLINE_AFTER_SEC: "30" });
    await heartbeat(t.app, "buffer-1", { capacity: 2 });
    const first = await createJobId(t.app);
    expect((await claim(t.app, "buffer-1")).json.job?.musetalk_job_id).toBe(first);

    await mainHeartbeat(t.app, "salad-1");
    await ageHeartbeat(t.db, "salad-1", 31);
    const second = await createJobId(t.app);
    expect((await claim(t.app, "buffer-1")).json.job?.musetalk_job_id).toBe(second);
  });

  appTest("a draining or quarantined main-tier worker does not hold jobs back from the buffer tier", async ({ startApp }) => {
    const t = await startApp({ BUFFER_SPILL_AFTER_SEC: "30" });
    await mainHeartbeat(t.app, "salad-1");
    await heartbeat(t.app, "buffer-1");
    await t.db.db.execute(sql`update buffer_workers set quarantined_until = now() + interval '10 minutes' where worker_id = 'salad-1'`);
    const id = await createJobId(t.app);
    expect((await claim(t.app, "buffer-1")).json.job?.musetalk_job_id).toBe(id);
  });

  appTest("a job older than BUFFER_SPILL_AFTER_SEC goes to a free buffer worker even while main-tier workers are online", async ({ startApp }) => {
    const t = await startApp({ BUFFER_SPILL_AFTER_SEC: "30" });
    await mainHeartbeat(t.app, "salad-1", { status: "busy" });
    await heartbeat(t.app, "buffer-1", { capacity: 2 });
    const fresh = await createJobId(t.app);
    const old = await createJobId(t.app);
    await ageJob(t, old, 31);
    const got = await claim(t.app, "buffer-1");
    expect(got.json.job?.musetalk_job_id).toBe(old);
    expect((await claim(t.app, "buffer-1")).json.job).toBeNull();
    expect((await mainClaim(t, "salad-1")).json.job?.musetalk_job_id).toBe(fresh);
  });

  appTest("a buffer worker's long-poll is answered with the job once the job has waited past the threshold", async ({ startApp }) => {
    const t = await startApp({ BUFFER_SPILL_AFTER_SEC: "1" });
    await mainHeartbeat(t.app, "salad-1", { status: "busy" });
    await heartbeat(t.app, "buffer-1");
    const id = await createJobId(t.app);
    const res = await claim(t.app, "buffer-1", 20_000);
    expect(res.json.job?.musetalk_job_id).toBe(id);
    const [row] = await queryRows<{ waited: number }>(
      t.db.db,
      sql`select extract(epoch from started_at - created_at)::float8 as waited from jobs where id = ${id}`,
    );
    expect(row!.waited).toBeGreaterThanOrEqual(1);
  });

  appTest("worker_type sets the tier (unknown types are main); a Fleet worker is buffer; an original buffer beat keeps the tier of a box running both loops", async ({ t }) => {
    await mainHeartbeat(t.app, "vast-1", { worker_type: "expensive" });
    await mainHeartbeat(t.app, "batch-1", { worker_type: "test-batch" });
    await mainHeartbeat(t.app, "both-loops", { worker_type: "transient" });
    await call(t.app, "POST", "/internal/buffer/workers/both-loops/heartbeat", { body: { status: "idle", gpu_class: "x", capacity: 1, error: null } });
    await mainHeartbeat(t.app, "replaced");
    await heartbeat(t.app, "replaced");
    const rows = await queryRows<{ worker_id: string; tier: string; protocol: string }>(
      t.db.db,
      sql`select worker_id, tier, protocol from buffer_workers order by worker_id`,
    );
    expect(rows).toEqual([
      { worker_id: "batch-1", tier: "main", protocol: "original" },
      { worker_id: "both-loops", tier: "transient", protocol: "original" },
      { worker_id: "replaced", tier: "buffer", protocol: "fleet" },
      { worker_id: "vast-1", tier: "expensive", protocol: "original" },
    ]);
  });

  appTest("with a buffer-only fleet the claim still reads jobs through the partial index, and asks about preferred workers through their own index", async ({ t }) => {
    await t.db.db.execute(sql`
      insert into jobs (status, video_url, audio_url, aspect_ratio, resolution, max_attempts, finished_at)
      select 'succeeded', 'https://93.184.216.34/v.mp4', 'https://93.184.216.34/a.wav', '1:1', '512x512', 3, now()
        from generate_series(1, 20000)`);
    await t.db.db.execute(sql`
      insert into buffer_workers (worker_id, status, last_heartbeat)
      select 'buffer-' || i, 'idle', now() from generate_series(1, 2000) as i`);
    await t.db.db.execute(sql`analyze jobs`);
    await t.db.db.execute(sql`analyze buffer_workers`);
    const plan = await queryRows<{ "QUERY PLAN": string }>(
      t.db.db,
      sql`explain ${claimNextJobSql({ workerId: "buffer-1", leaseTtlSec: 30, legacyLeaseTtlSec: 660, offlineAfterSec: 30, spillAfterSec: 30 })}`,
    );
    const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
    expect(text).toContain("jobs_runnable_idx");
    expect(text).toContain("buffer_workers_preferred_tier_idx");
    expect(text).not.toMatch(/Seq Scan on (jobs|buffer_workers)/);
  });
});
