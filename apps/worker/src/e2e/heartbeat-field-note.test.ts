import { startWorkerProcess } from "@fleet/testing/worker-process";
import type { LogRecord, WorkerProcess } from "@fleet/testing/worker-process";
import { describe, expect } from "vitest";
import { startFaultProxy, type FaultProxy } from "../test-support/fault-proxy.js";
import { e2eTest, Fleet } from "../test-support/fleet-harness.js";

/**
 * The field note's cases, one by one: the orchestrator answers 500, 401 or 404, refuses the
 * connection, or hangs. Each must give `buffer_worker_loop_error` with the status and a body
 * excerpt, claim nothing, back off instead of spinning, and — where the orchestrator comes
 * back — recover, log it once, and take the waiting job.
 */

const FAST = { BUFFER_POLL_INTERVAL_SEC: "0.2", ORCHESTRATOR_TIMEOUT_SEC: "1", CLAIM_WAIT_MS: "1000" };
const HEARTBEAT = /\/heartbeat$/;
const CLAIM = /\/jobs\/claim$/;

const errors = (w: WorkerProcess) => w.logRecords().filter((r) => r.msg === "buffer_worker_loop_error");
/** The logged error's message (errors are logged as `{ err }`). */
const errText = (r: Record<string, unknown> | undefined) => String((r?.err as { message?: unknown } | undefined)?.message);
const count = (w: WorkerProcess, msg: string) => w.logRecords().filter((r) => r.msg === msg).length;

async function waitForErrors(w: WorkerProcess, n: number, where: (r: LogRecord) => boolean = () => true) {
  for (let i = 0; i < n; i++) {
    const seen = errors(w).filter(where).length;
    if (seen >= n) return;
    await w.waitForLog("buffer_worker_loop_error", { afterIndex: w.logRecords().length, where, timeoutMs: 20_000 });
  }
}

/** Fails over `ms` and returns how many heartbeats got through to the proxy meanwhile. */
async function heartbeatsDuring(proxy: FaultProxy, ms: number): Promise<number> {
  const since = Date.now();
  await new Promise((r) => setTimeout(r, ms));
  return proxy.count(HEARTBEAT, since);
}

async function expectRecoveryTakesTheJob(fleet: Fleet, w: WorkerProcess, jobId: string, workerId: string) {
  await w.waitForLog("buffer_worker_heartbeat_recovered");
  const done = await fleet.waitForStatus(jobId, "succeeded");
  expect(done.worker_id).toBe(workerId);
  expect(count(w, "buffer_worker_heartbeat_recovered")).toBe(1);
  expect(count(w, "buffer_worker_loop_starting")).toBe(1);
  const row = await fleet.workerRow(workerId);
  expect(row?.age_sec).toBeLessThan(5);
}

describe("heartbeat failures from the field note", () => {
  e2eTest("500: logged with status and body, no claims, backoff, then recovery against the real orchestrator", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const proxy = await startFaultProxy(fleet.orchestrator.url);
    try {
      proxy.setMode({ kind: "status", status: 500, body: "Internal Server Error: database connection lost" });
      const job = await fleet.submit();
      const w = await fleet.startWorker("fn-500", { orchestratorUrl: proxy.url, env: FAST });
      await waitForErrors(w, 3);
      expect(errors(w)[0]).toMatchObject({ level: "warn", workerId: "fn-500", statusCode: 500 });
      expect(String(errors(w)[0]?.body)).toContain("database connection lost");

      // Period 0.2 s: 15 beats in 3 s at a steady rate, thousands in a hot loop. Backoff allows a handful.
      expect(await heartbeatsDuring(proxy, 3_000)).toBeLessThanOrEqual(8);
      expect(proxy.count(CLAIM)).toBe(0);
      expect((await fleet.job(job.id)).status).toBe("queued");

      proxy.setMode({ kind: "pass" });
      await expectRecoveryTakesTheJob(fleet, w, job.id, "fn-500");
    } finally {
      await proxy.close();
      await fleet.close();
    }
  });

  e2eTest("hanging orchestrator: each beat times out, is logged, nothing is claimed, and it recovers", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const proxy = await startFaultProxy(fleet.orchestrator.url);
    try {
      proxy.setMode({ kind: "hang" });
      const job = await fleet.submit();
      const w = await fleet.startWorker("fn-hang", { orchestratorUrl: proxy.url, env: FAST });
      await waitForErrors(w, 2);
      expect(errors(w)[0]).toMatchObject({ statusCode: null });
      expect(errText(errors(w)[0])).toMatch(/timed out|Timeout/i);
      expect(await heartbeatsDuring(proxy, 3_000)).toBeLessThanOrEqual(6);
      expect(proxy.count(CLAIM)).toBe(0);
      const health = (await (await fetch(`${w.url}/healthz`)).json()) as { status: string; heartbeat: { healthy: boolean } };
      expect(health).toMatchObject({ status: "degraded", heartbeat: { healthy: false } });

      proxy.setMode({ kind: "pass" });
      await expectRecoveryTakesTheJob(fleet, w, job.id, "fn-hang");
    } finally {
      await proxy.close();
      await fleet.close();
    }
  });

  e2eTest("connection refused while the orchestrator is down, then recovery when it comes back", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    try {
      const job = await fleet.submit();
      const w = await fleet.startWorker("fn-refused", { env: FAST, startTimeoutMs: 20_000 });
      await w.waitForLog("buffer_worker_heartbeat_ok");
      const port = fleet.orchestrator.port;
      // Stop it before the worker's first claim can take the job; the restart below brings it back.
      await fleet.orchestrator.stop();
      const errorsBefore = errors(w).length;
      await waitForErrors(w, errorsBefore + 2, (r) => errText(r).includes("ECONNREFUSED"));
      const refused = errors(w).find((r) => errText(r).includes("ECONNREFUSED"));
      expect(refused).toMatchObject({ statusCode: null, workerId: "fn-refused" });
      expect(errText(refused)).toContain(`127.0.0.1:${port}`);

      await fleet.restartOrchestrator();
      expect(fleet.orchestrator.port).toBe(port);
      await w.waitForLog("buffer_worker_heartbeat_recovered");
      const done = await fleet.waitForStatus(job.id, "succeeded");
      expect(done.worker_id).toBe("fn-refused");
      expect(count(w, "buffer_worker_heartbeat_recovered")).toBe(1);
      expect(count(w, "buffer_worker_loop_starting")).toBe(1);
    } finally {
      await fleet.close();
    }
  });

  e2eTest("401 from the real orchestrator (wrong key) is a configuration error on every attempt; the right key fixes it", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    try {
      const job = await fleet.submit();
      const wrong = await fleet.startWorker("fn-401", { internalApiKey: "not-the-key", env: FAST });
      await waitForErrors(wrong, 3);
      for (const e of errors(wrong)) {
        expect(e).toMatchObject({ level: "error", statusCode: 401, configurationError: true });
        expect(String(e.hint)).toMatch(/INTERNAL_API_KEY/);
        expect(String(e.body)).toContain("unauthorized");
      }
      expect(count(wrong, "buffer_job_claimed") + count(wrong, "buffer_claim_error")).toBe(0);
      expect(await fleet.workerRow("fn-401")).toBeNull();
      expect(wrong.logs().join("\n")).not.toContain("not-the-key");
      expect((await fleet.job(job.id)).status).toBe("queued");
      await wrong.stop();

      // The field note's fix: correct the env, restart the container, re-check.
      const right = await fleet.startWorker("fn-401", { env: FAST });
      await right.waitForLog("buffer_worker_heartbeat_ok");
      expect((await fleet.waitForStatus(job.id, "succeeded")).worker_id).toBe("fn-401");
      expect(errors(right)).toEqual([]);
    } finally {
      await fleet.close();
    }
  });

  e2eTest("404 from the real orchestrator (wrong base URL) is logged with the status and a hint, and nothing is claimed", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    try {
      const job = await fleet.submit();
      const w = await fleet.startWorker("fn-404", { orchestratorUrl: `${fleet.orchestrator.url}/api/v2`, env: FAST });
      await waitForErrors(w, 3);
      expect(errors(w)[0]).toMatchObject({ level: "error", statusCode: 404, configurationError: true });
      expect(String(errors(w)[0]?.hint)).toMatch(/BUFFER_ORCHESTRATOR_BASE_URL/);
      expect(count(w, "buffer_job_claimed") + count(w, "buffer_claim_error")).toBe(0);
      expect((await fleet.job(job.id)).status).toBe("queued");
    } finally {
      await fleet.close();
    }
  });

  e2eTest("missing orchestrator URL or key: a warning, no loop, and /hc still answers", async () => {
    const w = await startWorkerProcess({ env: { WORKER_MODE: "buffer", INTERNAL_API_KEY: "k" } });
    try {
      const warn = await w.waitForLog("buffer_worker_disabled_missing_config");
      expect(warn).toMatchObject({ level: "warn", missing: ["BUFFER_ORCHESTRATOR_BASE_URL (or ORCHESTRATOR_BASE_URL)"] });
      expect(String(warn.workerId)).toMatch(/^buffer-/);
      const res = await fetch(`${w.url}/hc`);
      expect(await res.json()).toEqual({ status: "ok" });
      expect(count(w, "buffer_worker_loop_starting")).toBe(0);
      expect(await w.stop()).toBe(0);
    } finally {
      await w.kill();
    }
  });

  e2eTest("a wrong setting stops the process at start with a message naming the variable", async () => {
    await expect(startWorkerProcess({ env: { BUFFER_CAPACITY: "zero", INFERENCE_DRIVER: "http" } })).rejects.toThrow(
      /fleet-worker: invalid worker configuration: BUFFER_CAPACITY/,
    );
  });
});
