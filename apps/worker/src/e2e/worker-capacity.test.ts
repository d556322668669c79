import { describe, expect } from "vitest";
import { e2eTest, Fleet } from "../test-support/fleet-harness.js";

const KEY = "generate-key-for-tests";

describe("BUFFER_CAPACITY is shared by claimed jobs and POST /generate (real orchestrator, built worker)", () => {
  e2eTest("a job claimed while a /generate call took the last slot is handed back and runs once the slot is free", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    const caller = new AbortController();
    try {
      // A long poll, so a claim is in flight while the worker is idle.
      const worker = await fleet.startWorker("cap-share-1", { env: { GENERATE_API_KEY: KEY, CLAIM_WAIT_MS: "30000" } });
      await worker.waitForLog("buffer_claim_resumed", { timeoutMs: 30_000 });

      // The direct call's input never arrives: it holds the only slot until its caller hangs up.
      fleet.files.fault("/held.mp4", { kind: "hang" });
      const direct = fetch(`${worker.url}/generate`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": KEY },
        body: JSON.stringify({
          musetalk_job_id: "6e5d4c3b-2a19-4f08-9e7d-6c5b4a392817",
          video_url: fleet.files.urlFor("/held.mp4"),
          audio_url: fleet.files.urlFor("/voice.wav"),
          aspect_ratio: "9:16",
          resolution: "720p",
        }),
        signal: caller.signal,
      }).catch(() => null);
      await expect.poll(() => fleet.files.requestCount("/held.mp4"), { timeout: 20_000 }).toBeGreaterThan(0);

      const job = await fleet.submit();
      const released = await worker.waitForLog("buffer_job_over_capacity_released", { timeoutMs: 30_000 });
      expect(released).toMatchObject({ jobId: job.id, running: 1, capacity: 1 });
      expect(worker.logRecords().filter((r) => r.msg === "worker_job_start")).toHaveLength(1);

      caller.abort();
      await direct;
      const done = await fleet.waitForStatus(job.id, "succeeded");
      expect(done.worker_id).toBe("cap-share-1");
      const attempts = await fleet.attempts(job.id);
      expect(attempts.map((a) => a.status)).toEqual(["released", "succeeded"]);
    } finally {
      caller.abort();
      await fleet.close();
    }
  });
});
