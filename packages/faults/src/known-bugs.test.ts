import { ErrorBody, HEADERS } from "@fleet/contract";
import { migratePostgresUrl } from "@fleet/orchestrator";
import { startOrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { createTestDatabases } from "@fleet/testing/postgres";
import { startThrowawayPostgres } from "@fleet/testing/postgres-cluster";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { FUZZ_INTERNAL_KEY, FUZZ_PUBLIC_KEY, startFuzzApp } from "./fuzz/fuzz-app.js";

/*
 * One deterministic reproduction per entry of KNOWN_BUGS. Each test states the correct behaviour
 * and is marked `it.fails` while the bug stands: when someone fixes it, the test starts failing
 * here, which is the signal to delete the `.fails` and the KNOWN_BUGS entry together.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("orchestrator-pg-client-error-crash", () => {
  it.fails("the orchestrator stays up when PostgreSQL drops a connection in the middle of a status report's transaction", async () => {
    const cluster = await startThrowawayPostgres();
    const orchestrator = await startOrchestratorProcess({ databaseUrl: cluster.url });
    const admin = new pg.Client({ connectionString: cluster.url });
    let exitCode: number | null | undefined;
    void orchestrator.exited.then((code) => (exitCode = code));
    const post = (path: string, body: unknown, key: "internal" | "public") =>
      fetch(`${orchestrator.url}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key === "internal" ? { [HEADERS.internalApiKey]: orchestrator.internalApiKey } : { [HEADERS.apiKey]: orchestrator.publicApiKey }),
        },
        body: JSON.stringify(body),
      });
    try {
      await post("/internal/buffer/workers/w1/heartbeat", { status: "idle", capacity: 1 }, "internal");
      await post("/v1/avatar/jobs", { video_url: "http://127.0.0.1/a.mp4", audio_url: "http://127.0.0.1/a.wav" }, "public");
      const claimed = (await (await post("/internal/buffer/jobs/claim", { worker_id: "w1" }, "internal")).json()) as { job: { buffer_job_id: string } };
      const attempt = claimed.job.buffer_job_id;

      // Hold the attempt's row, so the report's transaction waits on it with its client checked out...
      await admin.connect();
      await admin.query("begin");
      await admin.query("select 1 from buffer_jobs where buffer_job_id = $1 for update", [attempt]);
      const report = post(`/internal/buffer/jobs/${attempt}/status`, { status: "succeeded", output_url: "https://cdn.example.com/o.mp4" }, "internal").catch(
        (err: unknown) => err,
      );
      let waiting: number | undefined;
      for (let i = 0; i < 100 && waiting === undefined; i++) {
        const { rows } = await admin.query<{ pid: number }>("select pid from pg_stat_activity where wait_event_type = 'Lock' and pid <> pg_backend_pid()");
        waiting = rows[0]?.pid;
        if (waiting === undefined) await sleep(100);
      }
      expect(waiting).toBeDefined();
      // ...then the server ends that backend, as a PostgreSQL restart or failover does.
      await admin.query("select pg_terminate_backend($1)", [waiting]);
      await report;
      await sleep(1_000);

      expect(exitCode, `orchestrator exited:\n${orchestrator.logs().slice(-12).join("\n")}`).toBeUndefined();
      const health = await fetch(`${orchestrator.url}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      await admin.end().catch(() => undefined);
      await orchestrator.stop();
      await cluster.destroy();
    }
  });
});

describe("request bugs (in-process app over a real database)", () => {
  async function withApp(work: (inject: (opts: { method: "GET" | "POST"; url: string; payload?: unknown; key?: "internal" | "public" }) => Promise<{ status: number; json: unknown }>) => Promise<void>) {
    const databases = await createTestDatabases({ migrate: migratePostgresUrl, prefix: "fleet_knownbug" });
    const fuzz = await startFuzzApp((await databases.clone()).url);
    try {
      await work(async ({ method, url, payload, key = "internal" }) => {
        const res = await fuzz.app.inject({
          method,
          url,
          headers: key === "internal" ? { [HEADERS.internalApiKey]: FUZZ_INTERNAL_KEY } : { [HEADERS.apiKey]: FUZZ_PUBLIC_KEY },
          ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
        });
        let json: unknown;
        try {
          json = res.json();
        } catch {
          json = res.body;
        }
        return { status: res.statusCode, json };
      });
    } finally {
      await fuzz.close();
      await databases.close();
    }
  }

  it.fails("orchestrator-router-errors-skip-error-body: a bad %-escape and an over-long path parameter get the contract's ErrorBody", async () => {
    await withApp(async (inject) => {
      const badEscape = await inject({ method: "GET", url: "/v1/avatar/jobs/%E0%A4%A", key: "public" });
      expect(badEscape.status).toBe(400);
      expect(ErrorBody.safeParse(badEscape.json).success, JSON.stringify(badEscape.json)).toBe(true);
      const longId = await inject({ method: "POST", url: `/internal/buffer/workers/${"w".repeat(101)}/drain` });
      expect(longId.status).toBeLessThan(500);
      expect(ErrorBody.safeParse(longId.json).success, JSON.stringify(longId.json)).toBe(true);
    });
  });

  it.fails("orchestrator-nul-and-lone-surrogate-500: NUL and unpaired surrogates in strings are refused with 400, not a 500", async () => {
    await withApp(async (inject) => {
      const nul = await inject({ method: "POST", url: "/internal/buffer/workers/w1/heartbeat", payload: { status: "idle", gpu_class: "RTX\u00004090" } });
      expect(nul.status, JSON.stringify(nul.json)).toBe(400);
      const surrogate = await inject({
        method: "POST",
        url: "/v1/avatar/jobs",
        key: "public",
        payload: { video_url: "https://media.example.com/a.mp4", audio_url: "https://media.example.com/a.wav", metadata: { name: "\ud800" } },
      });
      expect(surrogate.status, JSON.stringify(surrogate.json)).toBe(400);
    });
  });
});
