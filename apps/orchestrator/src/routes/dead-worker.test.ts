import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { queryRows } from "../db/client.js";
import { runReaperPass } from "../reaper.js";
import {
  appTest,
  call,
  claimJob,
  createJobId,
  getJobView,
  heartbeat,
  originalHeartbeat,
  reportStatus,
  snapshotTables,
} from "../test-support/harness.js";

appTest(
  "a worker that dies holding a job: the job goes to another worker after the lease, the dead worker's late reports get 409 and change nothing, success is recorded once",
  async ({ startApp }) => {
    const t = await startApp({ LEASE_TTL_SEC: "1", WORKER_OFFLINE_AFTER_SEC: "30" });
    await heartbeat(t.app, "doomed");
    await heartbeat(t.app, "survivor");
    const jobId = await createJobId(t.app, { webhook_url: "https://93.184.216.34/fleet" });
    const first = await claimJob(t.app, "doomed");
    expect(first.musetalk_job_id).toBe(jobId);
    expect((await call(t.app, "POST", `/internal/jobs/${jobId}/progress`, {
      body: { progress: 0.4, phase: "inferring", worker_id: "doomed", buffer_job_id: first.buffer_job_id },
    })).status).toBe(200);

    // "doomed" stops heartbeating. Its 1 s lease runs out in real time; the reaper requeues.
    await new Promise((r) => setTimeout(r, 1300));
    await heartbeat(t.app, "survivor");
    await runReaperPass(t.db.db, t.config, t.log);
    const requeued = (await getJobView(t.app, jobId));
    expect(requeued).toMatchObject({ status: "queued", worker_id: null, progress: 0, attempts: 1 });

    const second = await claimJob(t.app, "survivor");
    expect(second.musetalk_job_id).toBe(jobId);
    expect(second.attempt).toBe(2);
    expect(second.buffer_job_id).not.toBe(first.buffer_job_id);
    await heartbeat(t.app, "survivor", { status: "busy", active_jobs: [second.buffer_job_id] });

    // The dead worker wakes up and reports late: every report is refused and nothing changes.
    const before = await snapshotTables(t.db);
    const lateStatus = await reportStatus(t.app, first.buffer_job_id, {
      status: "succeeded",
      output_url: "https://93.184.216.34/stale.mp4",
      metrics: {},
      error: null,
    });
    expect(lateStatus.status).toBe(409);
    expect(lateStatus.error?.code).toBe("lease_lost");
    const lateFailure = await reportStatus(t.app, first.buffer_job_id, { status: "failed", error: "late" });
    expect(lateFailure.error?.code).toBe("lease_lost");
    for (const body of [
      { progress: 0.9, phase: "encoding", worker_id: "doomed", buffer_job_id: first.buffer_job_id },
      { progress: 0.9, phase: "encoding", worker_id: "doomed" },
    ]) {
      const late = await call(t.app, "POST", `/internal/jobs/${jobId}/progress`, { body });
      expect(late.status).toBe(409);
      expect(late.error?.code).toBe("lease_lost");
    }
    expect(await snapshotTables(t.db)).toBe(before);
    // Its heartbeat, listing what it thinks it holds, is told the attempt is lost.
    expect((await heartbeat(t.app, "doomed", { status: "busy", active_jobs: [first.buffer_job_id] })).json.lost).toEqual([
      first.buffer_job_id,
    ]);

    // The survivor finishes; its success is recorded once, and a repeated report is a no-op 200.
    const done = { status: "succeeded", output_url: "https://93.184.216.34/real.mp4", metrics: { total_time: 12 }, error: null };
    expect((await reportStatus(t.app, second.buffer_job_id, done)).json).toEqual({ detail: "ok", job_status: "succeeded" });
    const afterSuccess = await snapshotTables(t.db);
    expect((await reportStatus(t.app, second.buffer_job_id, done)).json).toEqual({ detail: "ok", job_status: "succeeded" });
    expect(await snapshotTables(t.db)).toBe(afterSuccess);

    const job = (await getJobView(t.app, jobId));
    expect(job).toMatchObject({ status: "succeeded", output_url: "https://93.184.216.34/real.mp4", worker_id: "survivor", attempts: 2, progress: 1 });
    const attempts = await queryRows<{ worker_id: string; status: string }>(
      t.db.db,
      sql`select worker_id, status from buffer_jobs where job_id = ${jobId} order by attempt`,
    );
    expect(attempts).toEqual([
      { worker_id: "doomed", status: "interrupted" },
      { worker_id: "survivor", status: "succeeded" },
    ]);
    const hooks = await queryRows<{ event: string }>(t.db.db, sql`select event from webhook_deliveries where job_id = ${jobId}`);
    expect(hooks).toEqual([{ event: "job.succeeded" }]);
  },
);

appTest(
  "an original worker that restarted mid-job and heartbeats idle does not keep its old lease alive",
  async ({ startApp }) => {
    // Its legacy lease is long (LEGACY_LEASE_TTL_SEC, default 660 s): only the idle beat ends it.
    const t = await startApp({ LEASE_TTL_SEC: "1", WORKER_OFFLINE_AFTER_SEC: "30" });
    await originalHeartbeat(t.app, "buffer-orch-local-1");
    const jobId = await createJobId(t.app);
    const held = await claimJob(t.app, "buffer-orch-local-1");

    // The container restarts; the new process heartbeats "idle" (no active_jobs). The original
    // loop heartbeats only between jobs, so that beat proves the attempt is over on its side.
    const reply = await originalHeartbeat(t.app, "buffer-orch-local-1");
    expect(reply.json.detail).toBe("ok");
    expect(t.logs.some((l) => l.includes('"legacy_attempts_ended_by_idle_heartbeat"') && l.includes(held.buffer_job_id))).toBe(true);
    await runReaperPass(t.db.db, t.config, t.log);
    const [attempt] = await queryRows<{ status: string }>(
      t.db.db,
      sql`select status from buffer_jobs where buffer_job_id = ${held.buffer_job_id}`,
    );
    expect(attempt?.status).toBe("interrupted");
    expect(await getJobView(t.app, jobId)).toMatchObject({ status: "queued", attempts: 1 });
  },
);
