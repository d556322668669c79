import type { HeartbeatResponse, ListWorkersResponse } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { describe, expect } from "vitest";
import { queryRows } from "../db/client.js";
import { runReaperPass } from "../reaper.js";
import { appTest, call, claimJob, createJobViaApi, heartbeat } from "../test-support/harness.js";

const OPERATORS_QUERY = sql`SELECT worker_id, last_heartbeat, status FROM buffer_workers ORDER BY last_heartbeat DESC;`;

describe("worker liveness", () => {
  appTest("the operators' query shows a heartbeating worker fresh, and offline once it goes silent past the window", async ({ startApp }) => {
    const t = await startApp({ WORKER_OFFLINE_AFTER_SEC: "1" });
    const before = Date.now();
    const reply = await heartbeat(t.app, "buffer-gpu-box-1", { status: "busy", capacity: 2, gpu_class: "RTX 3090" });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ detail: "ok", heartbeat_interval_sec: 5, lease_ttl_sec: 30, cancel: [], lost: [], drain: false });
    await heartbeat(t.app, "buffer-gpu-box-2");

    await runReaperPass(t.db.db, t.config, t.log);
    let rows = await queryRows<{ worker_id: string; last_heartbeat: string; status: string }>(t.db.db, OPERATORS_QUERY);
    expect(rows.map((r) => [r.worker_id, r.status])).toEqual([
      ["buffer-gpu-box-2", "idle"],
      ["buffer-gpu-box-1", "busy"],
    ]);
    for (const row of rows) {
      const age = Date.now() - new Date(row.last_heartbeat.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00")).getTime();
      expect(age).toBeLessThan(Date.now() - before + 1000);
    }

    // Box 1 goes silent; box 2 keeps heartbeating. Real time passes the 1 s window.
    await new Promise((r) => setTimeout(r, 1300));
    await heartbeat(t.app, "buffer-gpu-box-2");
    await runReaperPass(t.db.db, t.config, t.log);
    rows = await queryRows(t.db.db, OPERATORS_QUERY);
    expect(rows.map((r) => [r.worker_id, r.status])).toEqual([
      ["buffer-gpu-box-2", "idle"],
      ["buffer-gpu-box-1", "offline"],
    ]);
    expect(t.logs.some((l) => l.includes('"worker_marked_offline"') && l.includes("buffer-gpu-box-1"))).toBe(true);

    // The ops listing agrees, and a heartbeat brings the worker back.
    const listed = (await call<ListWorkersResponse>(t.app, "GET", "/internal/buffer/workers")).json.workers;
    const box1 = listed.find((w) => w.worker_id === "buffer-gpu-box-1");
    expect(box1?.online).toBe(false);
    expect(box1?.heartbeat_age_sec).toBeGreaterThanOrEqual(1);
    await heartbeat(t.app, "buffer-gpu-box-1");
    rows = await queryRows(t.db.db, OPERATORS_QUERY);
    expect(rows[0]).toMatchObject({ worker_id: "buffer-gpu-box-1", status: "idle" });
  });

  appTest("the original workers' heartbeat bodies are accepted as they are sent", async ({ t }) => {
    // buffer loop: {status, gpu_class, capacity, error}; Vast supervisor: {status, gpu_class} only.
    expect((await call<HeartbeatResponse>(t.app, "POST", "/internal/buffer/workers/buffer-a/heartbeat", {
      body: { status: "idle", gpu_class: "Unknown GPU", capacity: 1, error: null },
    })).json.detail).toBe("ok");
    expect((await call<HeartbeatResponse>(t.app, "POST", "/internal/buffer/workers/vast-b/heartbeat", {
      body: { status: "idle", gpu_class: "RTX 4090" },
      headers: { "X-Internal-Api-Key": "internal-test-key-0001" },
      key: null,
    })).json.detail).toBe("ok");
    // Unknown fields are ignored.
    expect((await call(t.app, "POST", "/internal/buffer/workers/buffer-a/heartbeat", {
      body: { status: "busy", gpu_class: "x", capacity: 1, error: "RuntimeError('boom')", provider: "salad" },
    })).status).toBe(200);
    const [row] = await queryRows<{ status: string; error: string; capacity: number }>(
      t.db.db,
      sql`select status, error, capacity from buffer_workers where worker_id = 'buffer-a'`,
    );
    expect(row).toEqual({ status: "busy", error: "RuntimeError('boom')", capacity: 1 });
  });

  appTest("a heartbeat renews the leases it holds and reports the ones it lost or must cancel", async ({ t }) => {
    await heartbeat(t.app, "w", { capacity: 3 });
    for (let i = 0; i < 3; i++) await createJobViaApi(t.app);
    const a = await claimJob(t.app, "w");
    const b = await claimJob(t.app, "w");
    const c = await claimJob(t.app, "w");
    await t.db.db.execute(sql`update buffer_jobs set lease_expires_at = now() + interval '2 seconds'`);

    // c is cancelled by its client; the worker lists a and c plus an id it does not hold.
    expect((await call(t.app, "DELETE", `/v1/avatar/jobs/${c.musetalk_job_id}`)).status).toBe(200);
    const stranger = "00000000-0000-4000-8000-000000000000";
    const reply = await heartbeat(t.app, "w", { status: "busy", capacity: 3, active_jobs: [a.buffer_job_id, c.buffer_job_id, stranger] });
    expect(reply.json.cancel).toEqual([c.buffer_job_id]);
    expect(reply.json.lost).toEqual([stranger]);

    const leases = await queryRows<{ buffer_job_id: string; renewed: boolean }>(
      t.db.db,
      sql`select buffer_job_id, lease_expires_at > now() + interval '20 seconds' as renewed from buffer_jobs`,
    );
    const renewed = Object.fromEntries(leases.map((l) => [l.buffer_job_id, l.renewed]));
    expect(renewed).toEqual({ [a.buffer_job_id]: true, [b.buffer_job_id]: false, [c.buffer_job_id]: true });

    // Without active_jobs (the original workers), every running attempt of the worker is renewed.
    await heartbeat(t.app, "w", { status: "busy", capacity: 3 });
    const all = await queryRows<{ n: number }>(
      t.db.db,
      sql`select count(*)::int as n from buffer_jobs where lease_expires_at > now() + interval '20 seconds'`,
    );
    expect(all[0]?.n).toBe(3);
  });

  appTest("a burst of heartbeats from many workers, repeats included, is recorded and each worker gets its own reply", async ({ t }) => {
    await heartbeat(t.app, "holder");
    await createJobViaApi(t.app);
    const held = await claimJob(t.app, "holder");
    const stranger = "00000000-0000-4000-8000-000000000001";
    const replies = await Promise.all([
      ...Array.from({ length: 150 }, (_, i) => heartbeat(t.app, `burst-${i % 100}`, { status: "idle", capacity: 1 + (i % 3) })),
      heartbeat(t.app, "holder", { status: "busy", active_jobs: [held.buffer_job_id, stranger] }),
      heartbeat(t.app, "holder", { status: "busy", active_jobs: [held.buffer_job_id, stranger] }),
    ]);
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    const holderReplies = replies.slice(150).map((r) => r.json);
    for (const reply of holderReplies) expect(reply).toMatchObject({ detail: "ok", lost: [stranger], cancel: [], drain: false });
    for (const reply of replies.slice(0, 150)) expect(reply.json).toMatchObject({ detail: "ok", lost: [], cancel: [] });
    const [count] = await queryRows<{ n: number }>(t.db.db, sql`select count(*)::int as n from buffer_workers where worker_id like 'burst-%'`);
    expect(count?.n).toBe(100);
  });
});
