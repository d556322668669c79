import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { createDatabase, queryRows, type Executor } from "../db/client.js";
import { runMigrations } from "../db/migrate.js";
import { createLogger } from "../logging/create-logger.js";
import { appTest, testConfig, type TestApp } from "../test-support/harness.js";
import { ClaimBatcher } from "./claim-batcher.js";
import { candidateLimit, claimJobBatch, UNDECIDED } from "./claim-job-batch.js";
import { claimNextJob, type ClaimOptions } from "./claim-next-job.js";

/** Small deterministic PRNG (mulberry32), so a failing scenario is reproduced by its seed. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

/**
 * A random fleet and queue: workers of both tiers and protocols, some offline, draining,
 * quarantined or already running jobs in some slots; queued jobs of mixed priority and age, some
 * not yet due, some last run by one of the workers (retries). Returns the claims to make.
 */
async function seedScenario(t: TestApp, seed: number): Promise<ClaimOptions[]> {
  const r = random(seed);
  await t.db.db.execute(sql`delete from buffer_jobs; delete from jobs; delete from buffer_workers`);
  const workers = Array.from({ length: 2 + r.int(6) }, (_, i) => `w${i}`);
  for (const w of workers) {
    const state = r.pick(["ok", "ok", "ok", "ok", "offline", "draining", "quarantined"] as const);
    await t.db.db.execute(sql`
      insert into buffer_workers (worker_id, status, capacity, tier, protocol, last_heartbeat, drain_requested, quarantined_until)
      values (${w}, ${state === "draining" ? "draining" : "idle"}, ${1 + r.int(3)}, ${r.pick(["buffer", "buffer", "main"])},
              ${r.pick(["fleet", "fleet", "original"])}, now() - make_interval(secs => ${state === "offline" ? 120 : r.int(10)}),
              false, ${state === "quarantined" ? sql`now() + interval '10 minutes'` : null})`);
    // Some slots already busy.
    if (r.next() < 0.3) {
      await t.db.db.execute(sql`
        with j as (insert into jobs (status, video_url, audio_url, aspect_ratio, resolution, max_attempts, attempts, worker_id)
                   values ('running', 'http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3, 1, ${w}) returning id)
        insert into buffer_jobs (job_id, worker_id, slot, status, attempt, lease_expires_at)
        select id, ${w}, ${r.int(2)}, 'running', 1, now() + interval '30 seconds' from j`);
    }
  }
  const jobs = r.int(14);
  for (let i = 0; i < jobs; i++) {
    await t.db.db.execute(sql`
      insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts, priority, created_at, run_after, last_worker_id, attempts)
      values ('http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3, ${r.pick([0, 0, 5])},
              now() - make_interval(secs => ${r.int(120)}), now() + make_interval(secs => ${r.next() < 0.15 ? 60 : -r.int(60)}),
              ${r.next() < 0.3 ? r.pick(workers) : null}, ${r.int(2)})`);
  }
  return Array.from({ length: 2 + r.int(7) }, () => ({
    workerId: r.next() < 0.1 ? "never-seen" : r.pick(workers),
    leaseTtlSec: 30,
    offlineAfterSec: 30,
    legacyLeaseTtlSec: r.pick([null, 600]),
    spillAfterSec: r.pick([0, 30, 90]),
  }));
}

/** What a set of claims wrote, read inside its own transaction (so `now()` is the claims' now). */
async function claimedState(tx: Executor) {
  return queryRows<{ worker_id: string; job_id: string; slot: number; attempt: number; legacy_lease: boolean; lease_sec: number; busy: boolean; retry: boolean }>(
    tx,
    sql`select b.worker_id, b.job_id, b.slot, b.attempt, b.legacy_lease,
               extract(epoch from b.lease_expires_at - b.claimed_at)::float8 as lease_sec, w.status = 'busy' as busy,
               j.last_worker_id is not null as retry
          from buffer_jobs b join buffer_workers w using (worker_id) join jobs j on j.id = b.job_id
         where b.status = 'running' and b.claimed_at = now()
         order by b.job_id`,
  );
}

class Rollback extends Error {}

/** Runs `fn` in a transaction that is always rolled back, and returns what it returned. */
async function inRollback<T>(t: TestApp, fn: (tx: Executor) => Promise<T>): Promise<T> {
  let out: T | undefined;
  await t.db.db
    .transaction(async (tx) => {
      out = await fn(tx);
      throw new Rollback();
    })
    .catch((err: unknown) => {
      if (!(err instanceof Rollback)) throw err;
    });
  return out as T;
}

describe("claims made together in one statement", () => {
  appTest("in 150 random fleets, the batch gives every claim it decides what the same claims made one by one would get", async ({ t }) => {
    let claimedJobs = 0;
    let undecided = 0;
    let retries = 0;
    let legacy = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const claims = await seedScenario(t, seed);
      const batch = await inRollback(t, async (tx) => ({ answers: await claimJobBatch(tx, claims), state: await claimedState(tx) }));
      const decided = claims.filter((_, i) => batch.answers[i] !== UNDECIDED);
      const lone = await inRollback(t, async (tx) => {
        const answers = [];
        for (const c of decided) answers.push(await claimNextJob(tx, c));
        return { answers, state: await claimedState(tx) };
      });
      const jobOf = (a: unknown) => (a && typeof a === "object" ? [(a as { job_id: string }).job_id, (a as { attempt: number }).attempt] : a);
      const context = `seed ${seed}: ${JSON.stringify(claims)}`;
      expect(batch.answers.filter((a) => a !== UNDECIDED).map(jobOf), context).toEqual(lone.answers.map(jobOf));
      expect(batch.state, context).toEqual(lone.state);
      claimedJobs += batch.state.length;
      undecided += batch.answers.filter((a) => a === UNDECIDED).length;
      retries += batch.state.filter((s) => s.retry).length;
      legacy += batch.state.filter((s) => s.legacy_lease).length;
    }
    // The scenarios reach every path: jobs claimed, retries among them, legacy leases, claims
    // left undecided.
    expect(claimedJobs).toBeGreaterThan(100);
    expect(retries).toBeGreaterThan(10);
    expect(legacy).toBeGreaterThan(10);
    expect(undecided).toBeGreaterThan(10);
  });

  appTest("a claim the batch leaves undecided is answered by a lone claim: a buffer worker finds the old job behind a full list of fresh ones", async ({ startApp }) => {
    const t = await startApp({ BUFFER_SPILL_AFTER_SEC: "30" });
    await t.db.db.execute(sql`
      insert into buffer_workers (worker_id, status, capacity, tier, last_heartbeat) values
        ('main-1', 'idle', 1, 'main', now()), ('buffer-1', 'idle', 1, 'buffer', now())`);
    // Fresh urgent jobs fill the candidate list (2 × 2 claims); the one old job, the only one a
    // buffer worker may take while a main-tier worker is online, is behind them.
    await t.db.db.execute(sql`
      insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts, priority, created_at)
      select 'http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3, 9, now() from generate_series(1, 4)`);
    const [old] = await queryRows<{ id: string }>(
      t.db.db,
      sql`insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts, priority, created_at)
          values ('http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3, 0, now() - interval '5 minutes') returning id`,
    );
    const claim = (workerId: string) => ({ workerId, leaseTtlSec: 30, offlineAfterSec: 30, spillAfterSec: 30 });
    const direct = await inRollback(t, (tx) => claimJobBatch(tx, [claim("main-1"), claim("buffer-1")]));
    expect(direct[0]).toMatchObject({ attempt: 1 });
    expect(direct[1]).toBe(UNDECIDED);

    // Through the batcher (claims made in one event-loop turn share a statement): buffer-1's
    // undecided claim is made on its own right after.
    const batcher = new ClaimBatcher(t.db.db);
    const [main, buffer] = await Promise.all(["main-1", "buffer-1"].map((w) => batcher.claim(claim(w))));
    expect(main?.job_id).not.toBe(old?.id);
    expect(buffer?.job_id).toBe(old?.id);
  });

  appTest("a batch that loses a capacity-slot race to another orchestrator is claimed one by one, each claim with its own answer", async ({ t, databaseUrl }) => {
    await t.db.db.execute(sql`
      insert into buffer_workers (worker_id, status, capacity, last_heartbeat) values
        ('lead', 'idle', 1, now()), ('racer', 'idle', 1, now()), ('other', 'idle', 1, now())`);
    await t.db.db.execute(sql`
      insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts)
      select 'http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3 from generate_series(1, 5)`);
    // Another orchestrator's claim for `racer` has taken its only slot and not yet committed.
    const rival = new pg.Client({ connectionString: databaseUrl });
    await rival.connect();
    try {
      await rival.query("begin");
      await rival.query(`
        with j as (insert into jobs (status, video_url, audio_url, aspect_ratio, resolution, max_attempts, attempts, worker_id)
                   values ('running', 'http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3, 1, 'racer') returning id)
        insert into buffer_jobs (job_id, worker_id, slot, status, attempt, lease_expires_at)
        select id, 'racer', 0, 'running', 1, now() + interval '30 seconds' from j`);
      const batcher = new ClaimBatcher(t.db.db);
      // The three share a statement, whose insert for `racer` waits on the rival's uncommitted
      // slot and fails with unique_violation once it commits.
      const claims = ["lead", "racer", "other"].map((workerId) => batcher.claim({ workerId, leaseTtlSec: 30, offlineAfterSec: 30 }));
      for (let i = 0; ; i++) {
        const [waiting] = await queryRows<{ n: number }>(
          t.db.db,
          sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
        );
        if (waiting?.n) break;
        if (i > 500) throw new Error("the batch never waited on the rival's slot");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await rival.query("commit");
      const [lead, racer, other] = await Promise.all(claims);
      expect(lead).not.toBeNull();
      expect(racer).toBeNull();
      expect(other).not.toBeNull();
    } finally {
      await rival.end();
    }
    const rows = await queryRows<{ worker_id: string; n: number }>(
      t.db.db,
      sql`select worker_id, count(*)::int as n from buffer_jobs where status = 'running' group by worker_id order by worker_id`,
    );
    expect(rows).toEqual([
      { worker_id: "lead", n: 1 },
      { worker_id: "other", n: 1 },
      { worker_id: "racer", n: 1 },
    ]);
  });

  appTest("the batch statement keeps one cached plan as the queue grows: PostgreSQL does not plan it again on every call", async ({ databaseUrl }) => {
    // One connection, so every call reuses the same prepared statement.
    const config = { ...testConfig(databaseUrl), DATABASE_POOL_MAX: 1 };
    const db = await createDatabase(config, createLogger({ ...config, LOG_LEVEL: "silent" }));
    try {
      await db.db.execute(sql`insert into buffer_workers (worker_id, status, capacity, last_heartbeat) select 'w' || i, 'idle', 100, now() from generate_series(1, 3) as i`);
      // A long queue, analysed: with the candidate limit as a parameter, the cached plan had to
      // assume a tenth of it would be locked, and PostgreSQL chose to plan every call anew.
      await db.db.execute(sql`
        insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts)
        select 'http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3 from generate_series(1, 30000)`);
      await db.db.execute(sql`analyze jobs`);
      const claims = ["w1", "w2", "w3"].map((workerId) => ({ workerId, leaseTtlSec: 30, offlineAfterSec: 30 }));
      for (let i = 0; i < 15; i++) {
        const answers = await claimJobBatch(db.db, claims);
        expect(answers.every((a) => a !== null && a !== UNDECIDED)).toBe(true);
      }
      const plans = await queryRows<{ generic_plans: number; custom_plans: number }>(
        db.db,
        sql`select generic_plans::int, custom_plans::int from pg_prepared_statements where name like 'fleet_claim_job_batch%'`,
      );
      // PostgreSQL plans a prepared statement for its first five calls, then keeps its generic plan
      // if that is no dearer.
      expect(plans).toEqual([{ generic_plans: 10, custom_plans: 5 }]);
    } finally {
      await db.close();
    }
  });

  test("the candidate limit is at least twice the claims, a power of two, so a handful of statements cover every batch size", () => {
    expect([1, 2, 3, 4, 5, 10, 16, 17, 250, 500].map(candidateLimit)).toEqual([4, 4, 8, 8, 16, 32, 32, 64, 512, 1024]);
  });

  test("on embedded PGlite (the quick start's database) a batch claims too: each worker once, the duplicate claim alone", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "fleet-claim-batch-"));
    const config = { ...testConfig("postgres://unused"), DATABASE_URL: undefined, DATA_DIR: dataDir };
    const db = await createDatabase(config, createLogger({ ...config, LOG_LEVEL: "silent" }));
    try {
      expect(db.kind).toBe("pglite");
      await runMigrations(db);
      await db.db.execute(sql`insert into buffer_workers (worker_id, status, capacity, last_heartbeat) select 'w' || i, 'idle', 1, now() from generate_series(1, 4) as i`);
      await db.db.execute(sql`
        insert into jobs (video_url, audio_url, aspect_ratio, resolution, max_attempts)
        select 'http://127.0.0.1:9/v.mp4', 'http://127.0.0.1:9/a.wav', '1:1', '512x512', 3 from generate_series(1, 3)`);
      const batcher = new ClaimBatcher(db.db);
      const answers = await Promise.all(["w1", "w2", "w3", "w4", "w1"].map((workerId) => batcher.claim({ workerId, leaseTtlSec: 30, offlineAfterSec: 30 })));
      expect(answers.map((a) => a?.attempt ?? null)).toEqual([1, 1, 1, null, null]);
      expect(new Set(answers.map((a) => a?.job_id).filter(Boolean)).size).toBe(3);
    } finally {
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
