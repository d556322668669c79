import { probeMedia } from "@fleet/testing/media";
import { describe, expect } from "vitest";
import { e2eTest, Fleet } from "../test-support/fleet-harness.js";

describe("end to end on the CPU engine (real orchestrator, real PostgreSQL, built worker)", () => {
  e2eTest("a job submitted through the public API ends succeeded with video and audio of the voice's length", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    try {
      const worker = await fleet.startWorker("e2e-cpu-1");
      const job = await fleet.submit();
      const done = await fleet.waitForStatus(job.id, "succeeded");

      expect(done).toMatchObject({ attempts: 1, worker_id: "e2e-cpu-1", error: null, error_info: null });
      expect(done.output_url).toMatch(new RegExp(`^${worker.url}/outputs/avatar/outputs/${job.id}\\.mp4$`));
      const probe = await probeMedia(done.output_url ?? "");
      expect(probe).toMatchObject({ hasVideo: true, hasAudio: true, videoCodec: "h264", audioCodec: "aac" });
      expect(probe.durationSec).toBeGreaterThan(2.8);
      expect(probe.durationSec).toBeLessThan(3.3);
      // The development engine says what it is, in the job's metrics and in the logs.
      expect(done.metrics).toMatchObject({ engine: "ffmpeg", lip_sync: false, worker_id: "e2e-cpu-1" });
      const stageTimes = done.metrics?.stage_times as Record<string, unknown>;
      for (const stage of ["download", "validation", "inference", "upload"]) expect(typeof stageTimes[stage]).toBe("number");

      await worker.waitForLog("buffer_job_status_reported", { where: (r) => r.bufferJobId !== undefined });
      const records = worker.logRecords();
      expect(records.filter((r) => r.msg === "buffer_worker_loop_starting")).toEqual([
        expect.objectContaining({ workerId: "e2e-cpu-1", level: "info" }),
      ]);
      expect(records.filter((r) => r.msg === "buffer_job_claimed")).toHaveLength(1);
      expect(records.filter((r) => r.msg === "buffer_job_succeeded")).toHaveLength(1);
      expect(records.some((r) => r.msg === "inference_engine_no_lip_sync")).toBe(true);
      expect(records.filter((r) => r.msg === "buffer_worker_loop_error")).toEqual([]);
      // Which ffmpeg/ffprobe it runs, and their versions, are in the first log lines.
      type Tool = { source?: string; version?: string };
      const tools = records.find((r) => r.msg === "worker_media_tools") as { ffmpeg?: Tool; ffprobe?: Tool } | undefined;
      expect(tools?.ffmpeg?.source).toMatch(/^(env|system|npm)$/);
      expect(tools?.ffmpeg?.version).toMatch(/^ffmpeg version /);
      expect(tools?.ffprobe?.source).toMatch(/^(env|system|npm)$/);
      expect(tools?.ffprobe?.version).toMatch(/^ffprobe version /);
      // Per-stage and whole-job histograms, one observation each, labelled by GPU class only.
      const metrics = await (await fetch(`${worker.url}/metrics`)).text();
      for (const stage of ["download", "validation", "inference", "upload"]) {
        expect(metrics).toMatch(new RegExp(`^fleet_worker_stage_duration_seconds_count\\{gpu_class="[^"]+",stage="${stage}"\\} 1$`, "m"));
      }
      expect(metrics).toMatch(/^fleet_worker_job_duration_seconds_count\{gpu_class="[^"]+",outcome="succeeded"\} 1$/m);
      expect(metrics).not.toContain(job.id);
      // Heartbeat facts reached the table the operators query.
      // The beat after the job says idle again (the one during it said busy).
      await expect.poll(async () => (await fleet.workerRow("e2e-cpu-1"))?.status, { timeout: 20_000 }).toBe("idle");
      // The engine's own re-check can be in flight on a slow box: wait for its beat to say ready.
      await expect.poll(async () => (await fleet.workerRow("e2e-cpu-1"))?.engine?.state, { timeout: 20_000 }).toBe("ready");
      // System facts are gathered in the background and reach the table with a later beat.
      await expect.poll(async () => (await fleet.workerRow("e2e-cpu-1"))?.system ?? null, { timeout: 20_000 }).toHaveProperty("disk_free_gb");
      const row = await fleet.workerRow("e2e-cpu-1");
      expect(row).toMatchObject({ capacity: 1, version: "0.1.0" });
      expect(row?.engine).toMatchObject({ driver: "ffmpeg", state: "ready", lip_sync: false });
      expect(row?.system).toHaveProperty("disk_free_gb");
      expect(fleet.orchestrator.logs().join("\n")).not.toContain(fleet.orchestrator.internalApiKey);
      expect(worker.logs().join("\n")).not.toContain(fleet.orchestrator.internalApiKey);
    } finally {
      await fleet.close();
    }
  });

  e2eTest("a corrupt input ends failed as a media_error after one attempt, never retried", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    try {
      const worker = await fleet.startWorker("e2e-cpu-2");
      const job = await fleet.submit({ video_url: fleet.files.urlFor("/corrupt.mp4") });
      const done = await fleet.waitForStatus(job.id, "failed");
      expect(done.attempts).toBe(1);
      expect(done.error_info).toMatchObject({ error_type: "media_error", stage: "validation", retryable: false });
      expect(done.error).toMatch(/Invalid video file: ffprobe failed/);
      expect(await fleet.attempts(job.id)).toEqual([expect.objectContaining({ worker_id: "e2e-cpu-2", status: "failed" })]);
      const failed = await worker.waitForLog("buffer_job_failed");
      expect(failed).toMatchObject({ errorType: "media_error", stage: "validation", retryable: false });
      const metrics = await (await fetch(`${worker.url}/metrics`)).text();
      expect(metrics).toContain('fleet_worker_job_failures_total{stage="validation",error_type="media_error"} 1');
    } finally {
      await fleet.close();
    }
  });

  e2eTest("BUFFER_CAPACITY=2 runs two jobs at once on one worker", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    try {
      await fleet.startWorker("e2e-cpu-3", { env: { BUFFER_CAPACITY: "2" } });
      const jobs = await Promise.all([fleet.submit(), fleet.submit(), fleet.submit()]);
      const done = await Promise.all(jobs.map((j) => fleet.waitForStatus(j.id, "succeeded")));
      expect(done.every((j) => j.worker_id === "e2e-cpu-3")).toBe(true);
      const { rows } = await fleet.db.query<{ overlapping: number }>(
        `select count(*)::int as overlapping from buffer_jobs a join buffer_jobs b
            on a.buffer_job_id < b.buffer_job_id and a.claimed_at < b.finished_at and b.claimed_at < a.finished_at
         where a.worker_id = 'e2e-cpu-3' and b.worker_id = 'e2e-cpu-3'`,
      );
      expect(rows[0]?.overlapping).toBeGreaterThan(0);
    } finally {
      await fleet.close();
    }
  });
});
