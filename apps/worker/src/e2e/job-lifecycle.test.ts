import { readdir } from "node:fs/promises";
import path from "node:path";
import { startFakeInferenceServer, type FakeInferenceServer } from "@fleet/testing/fake-inference-server";
import { probeMedia } from "@fleet/testing/media";
import { describe, expect } from "vitest";
import { e2eTest, Fleet } from "../test-support/fleet-harness.js";

/**
 * A job's life when things happen to it: it runs long, it is cancelled, its worker is killed or
 * drained, the orchestrator goes away. The engine is the fake inference server over Fleet's
 * `http` contract, so a job can be made slow or endless on purpose.
 */

const slow = (ms: number) => ({ params: { fake: { mode: "slow", duration_ms: ms } } });

async function withFleet(
  databaseUrl: string,
  run: (fleet: Fleet, fake: FakeInferenceServer, env: Record<string, string>) => Promise<void>,
  orchestratorEnv: Record<string, string> = {},
) {
  const fleet = await Fleet.start(databaseUrl, orchestratorEnv);
  const fake = await startFakeInferenceServer({ tickMs: 50 });
  const env = { INFERENCE_DRIVER: "http", INFERENCE_URL: fake.url, INFERENCE_POLL_MS: "100" };
  try {
    await run(fleet, fake, env);
  } finally {
    await fleet.close();
    await fake.close();
  }
}

describe("job lifecycle against the real orchestrator", () => {
  e2eTest("a job longer than 10 heartbeat periods keeps last_heartbeat fresh and shows busy", async ({ databaseUrl }) => {
    await withFleet(databaseUrl, async (fleet, _fake, env) => {
      const w = await fleet.startWorker("life-long", { env: { ...env, BUFFER_POLL_INTERVAL_SEC: "0.2" } });
      const job = await fleet.submit(slow(8_000));
      await fleet.waitForStatus(job.id, "running");
      const samples: Array<{ status: string; age: number }> = [];
      const progress: number[] = [];
      for (let view = await fleet.job(job.id); view.status === "running"; view = await fleet.job(job.id)) {
        progress.push(view.progress);
        // The original's /hc stalled during inference; this one answers throughout.
        expect(await (await fetch(`${w.url}/hc`)).json()).toEqual({ status: "ok" });
        const row = await fleet.workerRow("life-long");
        if (row) samples.push({ status: row.status, age: row.age_sec ?? Infinity });
        await new Promise((r) => setTimeout(r, 200));
      }
      // Progress arrived while the job ran, and never went backwards.
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(new Set(progress).size).toBeGreaterThan(3);
      expect((await fleet.job(job.id)).status).toBe("succeeded");
      // 8 s of inference is 40 periods; a heartbeat blocked by the job would let the age reach 8 s.
      // The bound leaves room for a loaded 2-core box (the orchestrator and PostgreSQL share it).
      expect(samples.length).toBeGreaterThan(15);
      expect(samples.filter((s) => s.status === "busy").length).toBeGreaterThan(samples.length / 2);
      expect(Math.max(...samples.map((s) => s.age))).toBeLessThan(4);
      await expect.poll(async () => (await fleet.workerRow("life-long"))?.status, { timeout: 20_000 }).toBe("idle");
    });
  });

  e2eTest("a running job cancelled through the public API is aborted in the engine and ends cancelled", async ({ databaseUrl }) => {
    await withFleet(databaseUrl, async (fleet, fake, env) => {
      const w = await fleet.startWorker("life-cancel", { env });
      const job = await fleet.submit({ params: { fake: "hang" } });
      const running = await fleet.waitForStatus(job.id, "running");
      const [attempt] = await fleet.attempts(job.id);
      await fake.waitForPrediction(attempt?.buffer_job_id ?? "", ["processing"]);
      const cancelled = await fleet.call("cancelJob", { params: { id: running.id } });
      expect(cancelled.status).toBe(200);
      const done = await fleet.waitForStatus(job.id, "cancelled");
      expect(done.attempts).toBe(1);
      expect((await fake.waitForPrediction(attempt?.buffer_job_id ?? "")).status).toBe("canceled");
      await w.waitForLog("buffer_job_cancelled");
      expect(await fleet.attempts(job.id)).toEqual([expect.objectContaining({ status: "cancelled" })]);
    });
  });

  e2eTest("a worker SIGKILLed mid-job: the lease runs out and the job finishes on another worker", async ({ databaseUrl }) => {
    await withFleet(databaseUrl, async (fleet, _fake, env) => {
      const a = await fleet.startWorker("life-kill-a", { env });
      const job = await fleet.submit(slow(3_000));
      await fleet.waitForJob(job.id, (j) => j.status === "running" && j.worker_id === "life-kill-a");
      await a.kill();
      const b = await fleet.startWorker("life-kill-b", { env });
      const done = await fleet.waitForStatus(job.id, "succeeded", 90_000);
      expect(done.worker_id).toBe("life-kill-b");
      expect(done.attempts).toBe(2);
      expect((await fleet.attempts(job.id)).map((x) => [x.worker_id, x.status])).toEqual([
        ["life-kill-a", "interrupted"],
        ["life-kill-b", "succeeded"],
      ]);
      expect((await probeMedia(done.output_url ?? "")).hasAudio).toBe(true);
      await b.waitForLog("buffer_job_succeeded");
    });
  });

  e2eTest("orchestrator down during a job: the result waits in the outbox and is delivered when it comes back", async ({ databaseUrl }) => {
    await withFleet(
      databaseUrl,
      async (fleet, _fake, env) => {
        const w = await fleet.startWorker("life-outage", { env });
        const job = await fleet.submit(slow(2_500));
        await fleet.waitForJob(job.id, (j) => j.status === "running");
        await fleet.orchestrator.stop();

        await w.waitForLog("buffer_job_succeeded", { timeoutMs: 30_000 });
        await w.waitForLog("buffer_job_status_update_failed");
        expect(await readdir(path.join(w.workDir, "outbox"))).toEqual([`${(await fleetAttempt(fleet, job.id))}.json`]);

        await fleet.restartOrchestrator(1_000);
        const done = await fleet.waitForStatus(job.id, "succeeded");
        expect(done.attempts).toBe(1);
        expect(done.worker_id).toBe("life-outage");
        await w.waitForLog("buffer_job_status_reported");
        await expect.poll(async () => (await readdir(path.join(w.workDir, "outbox"))).filter((f) => f.endsWith(".json")), { timeout: 20_000 }).toEqual([]);
        expect((await probeMedia(done.output_url ?? "")).hasVideo).toBe(true);
      },
      // Long enough that the lease outlives the outage, as the 30 s production default does.
      { LEASE_TTL_SEC: "30", WORKER_OFFLINE_AFTER_SEC: "30" },
    );
  });

  e2eTest("an operator's drain (heartbeat reply drain: true) stops claims until undrain", async ({ databaseUrl }) => {
    await withFleet(databaseUrl, async (fleet, _fake, env) => {
      const w = await fleet.startWorker("life-opdrain", { env });
      await w.waitForLog("buffer_worker_heartbeat_ok");
      const headers = { "x-internal-api-key": fleet.orchestrator.internalApiKey };
      const drained = await fetch(`${fleet.orchestrator.url}/internal/buffer/workers/life-opdrain/drain`, { method: "POST", headers });
      expect(drained.status).toBe(200);
      await drained.body?.cancel();
      await w.waitForLog("buffer_worker_drain_requested");
      await expect.poll(async () => (await fleet.workerRow("life-opdrain"))?.status, { timeout: 20_000 }).toBe("draining");
      const job = await fleet.submit();
      await fleet.heartbeatsPass("life-opdrain", 4);
      expect((await fleet.job(job.id)).status).toBe("queued");

      const undrained = await fetch(`${fleet.orchestrator.url}/internal/buffer/workers/life-opdrain/undrain`, { method: "POST", headers });
      await undrained.body?.cancel();
      await w.waitForLog("buffer_worker_undrained");
      expect((await fleet.waitForStatus(job.id, "succeeded")).worker_id).toBe("life-opdrain");
    });
  });

  e2eTest("SIGTERM drains: no new claims, heartbeat says draining, the running job finishes, exit 0", async ({ databaseUrl }) => {
    await withFleet(databaseUrl, async (fleet, _fake, env) => {
      const w = await fleet.startWorker("life-drain", { env: { ...env, DRAIN_GRACE_SEC: "60" } });
      const job = await fleet.submit(slow(3_000));
      await fleet.waitForStatus(job.id, "running");
      w.signal("SIGTERM");
      await w.waitForLog("buffer_worker_draining");
      const second = await fleet.submit();
      await expect.poll(async () => (await fleet.workerRow("life-drain"))?.status, { timeout: 20_000 }).toBe("draining");
      expect(await w.exited).toBe(0);
      expect((await fleet.job(job.id)).status).toBe("succeeded");
      expect((await fleet.job(second.id)).status).toBe("queued");
      await w.waitForLog("buffer_worker_stopped");
    });
  });

  e2eTest("SIGTERM with a job longer than the grace period hands it back as released; another worker finishes it", async ({ databaseUrl }) => {
    await withFleet(databaseUrl, async (fleet, fake, env) => {
      const a = await fleet.startWorker("life-release-a", { env: { ...env, DRAIN_GRACE_SEC: "0.5" } });
      const job = await fleet.submit(slow(8_000));
      await fleet.waitForStatus(job.id, "running");
      const [attempt] = await fleet.attempts(job.id);
      await fake.waitForPrediction(attempt?.buffer_job_id ?? "", ["processing"]);
      await a.stop("SIGTERM");
      await a.waitForLog("buffer_job_released");
      expect(a.logRecords().some((r) => r.msg === "buffer_worker_drain_timeout")).toBe(true);
      expect((await fake.waitForPrediction(attempt?.buffer_job_id ?? "")).status).toBe("canceled");
      expect(await fleet.attempts(job.id)).toEqual([expect.objectContaining({ worker_id: "life-release-a", status: "released" })]);

      await fleet.startWorker("life-release-b", { env });
      const done = await fleet.waitForStatus(job.id, "succeeded", 60_000);
      expect(done.worker_id).toBe("life-release-b");
    });
  });

  e2eTest("a second SIGTERM aborts the running job at once, reports it released, and exits 0", async ({ databaseUrl }) => {
    await withFleet(databaseUrl, async (fleet, _fake, env) => {
      const w = await fleet.startWorker("life-abort", { env: { ...env, DRAIN_GRACE_SEC: "600" } });
      const job = await fleet.submit({ params: { fake: "hang" } });
      await fleet.waitForStatus(job.id, "running");
      w.signal("SIGTERM");
      await w.waitForLog("buffer_worker_draining");
      w.signal("SIGTERM");
      expect(await w.exited).toBe(0);
      expect(w.logRecords().some((r) => r.msg === "buffer_worker_abort_requested")).toBe(true);
      expect(w.logRecords().some((r) => r.msg === "buffer_job_released")).toBe(true);
      expect(await fleet.attempts(job.id)).toEqual([expect.objectContaining({ status: "released" })]);
      expect((await fleet.job(job.id)).status).toBe("queued");
    });
  });
});

async function fleetAttempt(fleet: Fleet, jobId: string): Promise<string> {
  const [a] = await fleet.attempts(jobId);
  return a?.buffer_job_id ?? "";
}
