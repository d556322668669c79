import type { IncomingMessage, ServerResponse } from "node:http";
import { routeRequest } from "@fleet/contract";
import { sql } from "drizzle-orm";
import { describe, expect, vi } from "vitest";
import { queryRows } from "../db/client.js";
import {
  ageHeartbeat,
  appTest,
  call,
  claim,
  claimJob,
  createJobId,
  createJobViaApi,
  heartbeat,
  INTERNAL_KEY,
  reportStatus,
} from "../test-support/harness.js";
import { claimNextJobSql } from "./claim-next-job.js";

describe("claiming jobs", () => {
  appTest("200 jobs claimed by 40 concurrent claimers: each job exactly once", async ({ startApp }) => {
    const t = await startApp({ DATABASE_POOL_MAX: "40", LOG_LEVEL: "warn" });
    const workers = Array.from({ length: 40 }, (_, i) => `gpu-${i}`);
    for (const w of workers) expect((await heartbeat(t.app, w, { capacity: 64 })).status).toBe(200);
    for (let i = 0; i < 200; i++) expect((await createJobViaApi(t.app)).status).toBe(201);

    const claimed: { workerId: string; jobId: string }[] = [];
    await Promise.all(
      workers.map(async (workerId) => {
        for (;;) {
          const res = await claim(t.app, workerId);
          expect(res.status, JSON.stringify(res.json)).toBe(200);
          if (!res.json.job) return;
          claimed.push({ workerId, jobId: res.json.job.musetalk_job_id });
        }
      }),
    );

    expect(claimed).toHaveLength(200);
    expect(new Set(claimed.map((c) => c.jobId)).size).toBe(200);
    const [counts] = await queryRows<{ attempts: number; running: number; queued: number; multi: number }>(
      t.db.db,
      sql`select (select count(*)::int from buffer_jobs) as attempts,
                 (select count(*)::int from jobs where status = 'running' and attempts = 1) as running,
                 (select count(*)::int from jobs where status = 'queued') as queued,
                 (select count(*)::int from (select job_id from buffer_jobs group by job_id having count(*) > 1) m) as multi`,
    );
    expect(counts).toEqual({ attempts: 200, running: 200, queued: 0, multi: 0 });
  });

  appTest("concurrent claims by one worker never exceed its capacity", async ({ startApp }) => {
    const t = await startApp({ DATABASE_POOL_MAX: "12" });
    await heartbeat(t.app, "one-slot", { capacity: 2 });
    for (let i = 0; i < 10; i++) await createJobViaApi(t.app);
    const results = await Promise.all(Array.from({ length: 10 }, () => claim(t.app, "one-slot")));
    for (const r of results) expect(r.status).toBe(200);
    const got = results.filter((r) => r.json.job !== null);
    expect(got).toHaveLength(2);
    // Losers see the winners' slots or their locked rows, depending on timing.
    for (const r of results.filter((r) => r.json.job === null)) expect(["at_capacity", "no_job"]).toContain(r.json.reason);
    const [running] = await queryRows<{ n: number }>(
      t.db.db,
      sql`select count(*)::int as n from buffer_jobs where worker_id = 'one-slot' and status = 'running'`,
    );
    expect(running?.n).toBe(2);
    expect((await claim(t.app, "one-slot")).json).toEqual({ job: null, reason: "at_capacity" });
  });

  appTest("a claim says why it got nothing", async ({ t }) => {
    expect((await claim(t.app, "never-seen")).json).toEqual({ job: null, reason: "unknown_worker" });

    await heartbeat(t.app, "idle-worker");
    expect((await claim(t.app, "idle-worker")).json).toEqual({ job: null, reason: "no_job" });

    await createJobViaApi(t.app);
    await heartbeat(t.app, "stale-worker");
    await ageHeartbeat(t.db, "stale-worker", 31);
    expect((await claim(t.app, "stale-worker")).json).toEqual({ job: null, reason: "worker_offline" });

    await heartbeat(t.app, "draining-worker", { status: "draining" });
    expect((await claim(t.app, "draining-worker")).json).toEqual({ job: null, reason: "worker_draining" });

    await heartbeat(t.app, "drained-worker");
    expect((await call(t.app, "POST", "/internal/buffer/workers/drained-worker/drain")).status).toBe(200);
    expect((await claim(t.app, "drained-worker")).json).toEqual({ job: null, reason: "worker_draining" });
    expect((await heartbeat(t.app, "drained-worker")).json.drain).toBe(true);
    expect((await call(t.app, "POST", "/internal/buffer/workers/drained-worker/undrain")).status).toBe(200);
    expect((await heartbeat(t.app, "drained-worker")).json.drain).toBe(false);

    await t.db.db.execute(sql`insert into buffer_workers (worker_id, status, quarantined_until)
                              values ('sick-worker', 'idle', now() + interval '10 minutes')`);
    expect((await claim(t.app, "sick-worker")).json).toEqual({ job: null, reason: "worker_quarantined" });

    // Nobody above took the job; an eligible worker does, and is then full.
    await heartbeat(t.app, "busy-worker", { capacity: 1 });
    expect((await claim(t.app, "busy-worker")).json.job).not.toBeNull();
    await createJobViaApi(t.app);
    expect((await claim(t.app, "busy-worker")).json).toEqual({ job: null, reason: "at_capacity" });
  });

  appTest("higher priority runs first; equal priorities run in submission order", async ({ t }) => {
    await heartbeat(t.app, "w", { capacity: 8 });
    const low = await createJobId(t.app, { priority: 0 });
    const high = await createJobId(t.app, { priority: 5 });
    const low2 = await createJobId(t.app, { priority: 0 });
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push((await claimJob(t.app, "w")).musetalk_job_id);
    expect(order).toEqual([high, low, low2]);
  });

  appTest("a retried job goes to another worker when one is free, and back to the same one when it is alone", async ({ startApp }) => {
    const t = await startApp({ RETRY_BACKOFF_BASE_SEC: "0.01" });
    await heartbeat(t.app, "w1", { capacity: 4 });
    await heartbeat(t.app, "w2", { capacity: 4 });
    const retried = await createJobId(t.app);
    const first = await claimJob(t.app, "w1");
    expect(first.musetalk_job_id).toBe(retried);
    expect((await reportStatus(t.app, first.buffer_job_id, { status: "failed", error: "CUDA OOM" })).json.job_status).toBe("queued");
    const fresh = await createJobId(t.app);
    await new Promise((r) => setTimeout(r, 50)); // let the 10 ms backoff pass

    // The retry is older and would come first, but w1 just failed it: w1 gets the fresh job.
    expect((await claimJob(t.app, "w1")).musetalk_job_id).toBe(fresh);
    const again = await claimJob(t.app, "w2");
    expect(again.musetalk_job_id).toBe(retried);
    expect(again.attempt).toBe(2);

    // Alone with its own failed job, a worker still gets it.
    expect((await reportStatus(t.app, again.buffer_job_id, { status: "failed", error: "again" })).json.job_status).toBe("queued");
    await new Promise((r) => setTimeout(r, 50));
    expect((await claimJob(t.app, "w2")).musetalk_job_id).toBe(retried);
  });

  appTest("a long-polling claim is woken by a new job", async ({ t }) => {
    await heartbeat(t.app, "poller");
    const pending = claim(t.app, "poller", 20_000);
    await new Promise((r) => setTimeout(r, 300));
    const created = await createJobId(t.app);
    const res = await pending;
    expect(res.json.job?.musetalk_job_id).toBe(created);
  });

  appTest("a long-polling claim with nothing to do answers no_job when its wait is over", async ({ t }) => {
    await heartbeat(t.app, "poller");
    expect((await claim(t.app, "poller", 300)).json).toEqual({ job: null, reason: "no_job" });
  });

  appTest("the claim reads queued jobs through the partial index, not the finished ones", async ({ t }) => {
    await t.db.db.execute(sql`
      insert into jobs (status, video_url, audio_url, aspect_ratio, resolution, max_attempts, finished_at)
      select 'succeeded', 'https://93.184.216.34/v.mp4', 'https://93.184.216.34/a.wav', '1:1', '512x512', 3, now()
        from generate_series(1, 20000)`);
    await t.db.db.execute(sql`analyze jobs`);
    const plan = await queryRows<{ "QUERY PLAN": string }>(
      t.db.db,
      sql`explain ${claimNextJobSql({ workerId: "w", leaseTtlSec: 30, offlineAfterSec: 30 })}`,
    );
    const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
    expect(text).toContain("jobs_runnable_idx");
    expect(text).not.toMatch(/Seq Scan on jobs/);
  });
});

describe("long-polling claims and their clients", () => {
  appTest("a claim whose client hung up stops waiting and does not take the next job", async ({ t }) => {
    const address = await t.app.listen({ host: "127.0.0.1", port: 0 });
    await heartbeat(t.app, "quitter", { capacity: 2 });
    await heartbeat(t.app, "stayer");
    // The claim is held once its handler listens for the hang-up on the response: abort only
    // then, so an abort that lands before the handler runs cannot decide the outcome.
    let response: ServerResponse | undefined;
    let listenersBefore = 0;
    t.app.server.once("request", (_req: IncomingMessage, res: ServerResponse) => {
      response = res;
      listenersBefore = res.listenerCount("close");
    });
    const hangUp = new AbortController();
    const request = routeRequest("claimJob", { body: { worker_id: "quitter", wait_ms: 20_000 } }, { internalApiKey: INTERNAL_KEY });
    const abandoned = fetch(address + request.path, { ...request, signal: hangUp.signal }).catch(() => "aborted");
    await vi.waitFor(() => expect(response?.listenerCount("close") ?? 0).toBeGreaterThan(listenersBefore), { timeout: 10_000, interval: 5 });
    hangUp.abort();
    expect(await abandoned).toBe("aborted");
    // The event this waits for: the abandoned claim's handler has returned (it counts an empty
    // claim as it does). A claim that kept waiting never gets here within its 20 s wait_ms, so
    // the ceiling fails the test; nothing is left that could still take the job created next.
    await vi.waitFor(() => expect(t.counters.emptyClaims).toBe(1), { timeout: 10_000, interval: 20 });

    const id = await createJobId(t.app);
    expect((await claimJob(t.app, "stayer")).musetalk_job_id).toBe(id);
    const [attempts] = await queryRows<{ n: number }>(t.db.db, sql`select count(*)::int as n from buffer_jobs where worker_id = 'quitter'`);
    expect(attempts?.n).toBe(0);
  });

  appTest("closing the app answers held claims instead of waiting out their wait_ms", async ({ t }) => {
    await heartbeat(t.app, "poller");
    const held = claim(t.app, "poller", 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const closed = t.close();
    const outcome = await Promise.race([held, new Promise((r) => setTimeout(() => r("still waiting"), 15_000))]);
    expect(outcome).not.toBe("still waiting");
    expect((outcome as Awaited<typeof held>).json).toEqual({ job: null, reason: "no_job" });
    await closed;
  });
});
