import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { startOriginalOrchestrator, type OriginalJob, type OriginalOrchestrator } from "@fleet/testing/original-orchestrator";
import { startWorkerProcess, type WorkerProcess } from "@fleet/testing/worker-process";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";

/*
 * A worker-first migration: the built Fleet worker on the CPU engine against a stand-in for the
 * ORIGINAL orchestrator (packages/testing), which answers only what the original did.
 */

let mediaDir = "";
let files: FileServer;
let original: OriginalOrchestrator | null = null;
let worker: WorkerProcess | null = null;

beforeAll(async () => {
  mediaDir = await mkdtemp(path.join(tmpdir(), "fleet-original-media-"));
  await Promise.all([makeTestVideo(path.join(mediaDir, "avatar.mp4"), { seconds: 1 }), makeTestAudio(path.join(mediaDir, "voice.wav"), { seconds: 2 })]);
  files = await startFileServer(mediaDir);
});

afterAll(async () => {
  await files.close();
  await rm(mediaDir, { recursive: true, force: true });
});

afterEach(async () => {
  await worker?.kill();
  await original?.close();
  worker = null;
  original = null;
});

async function startPair(workerId: string, env: Record<string, string> = {}): Promise<{ original: OriginalOrchestrator; worker: WorkerProcess }> {
  original = await startOriginalOrchestrator();
  worker = await startWorkerProcess({
    orchestratorUrl: original.url,
    internalApiKey: original.internalApiKey,
    workerId,
    env: { BUFFER_POLL_INTERVAL_SEC: "0.5", ...env },
  });
  return { original, worker };
}

async function waitFor<T>(what: string, read: () => T | undefined | null | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function submit(o: OriginalOrchestrator): OriginalJob {
  return o.enqueue({ video_url: files.urlFor("/avatar.mp4"), audio_url: files.urlFor("/voice.wav") });
}

describe("a Fleet worker on the original orchestrator", () => {
  test("heartbeats, says the orchestrator speaks the original protocol, claims, reports progress and a succeeded status", async () => {
    const { original, worker } = await startPair("fleet-on-original-1");
    const detected = await worker.waitForLog("orchestrator_protocol_detected");
    expect(detected).toMatchObject({ protocol: "original", workerId: "fleet-on-original-1" });
    await waitFor("a second heartbeat", () => (original.worker("fleet-on-original-1")?.heartbeats ?? 0) >= 2);
    expect(original.worker("fleet-on-original-1")).toMatchObject({ status: "idle", capacity: 1, error: null });

    const job = submit(original);
    await waitFor("the job to end", () => (job.status === "succeeded" || job.status === "failed") && job);
    expect(job).toMatchObject({ status: "succeeded", worker_id: "fleet-on-original-1", error: null });
    expect(job.output_url).toMatch(new RegExp(`^${worker.url}/outputs/.*${job.id}\\.mp4$`));
    expect(job.statusReports).toHaveLength(1);
    expect(job.statusReports[0]).toMatchObject({ status: "succeeded", output_url: job.output_url });
    expect(job.metrics).toMatchObject({ engine: "ffmpeg" });

    // Progress went to the musetalk_job_id, under the worker's id, and never backwards.
    const progress = job.progressReports.map((r) => r.progress as number);
    // At least one: how many depends on how fast this box runs the CPU engine (reports are throttled).
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(job.progressReports.every((r) => r.worker_id === "fleet-on-original-1" && r.buffer_job_id === job.buffer_job_id)).toBe(true);

    // The output is really there for the client to fetch.
    const res = await fetch(job.output_url ?? "");
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(1000);

    const records = worker.logRecords();
    expect(records.filter((r) => r.msg === "orchestrator_protocol_detected")).toHaveLength(1);
    expect(records.filter((r) => r.msg === "buffer_worker_loop_error")).toEqual([]);
    expect(records.filter((r) => r.msg === "buffer_claim_error")).toEqual([]);
    // The original knows only idle and busy: nothing the worker sent was refused.
    expect(original.requests().filter((r) => r.status >= 400)).toEqual([]);
  });

  test("rides out a 5xx spell that starts mid-job: stops claiming, keeps the result, reports it when the orchestrator is back", async () => {
    const { original, worker } = await startPair("fleet-on-original-2");
    await worker.waitForLog("orchestrator_protocol_detected");
    original.onClaim = () => original.startOutage(502);

    const first = submit(original);
    // The job finishes during the spell; its report cannot get through and is retried.
    await worker.waitForLog("buffer_job_status_update_failed", { where: (r) => r.statusCode === 502 });
    await worker.waitForLog("buffer_worker_loop_error", { where: (r) => r.statusCode === 502 });
    const second = submit(original);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(first.status).toBe("running");
    expect(second.status).toBe("pending_buffer");

    original.onClaim = null;
    const outageEnded = Date.now();
    original.endOutage();
    await worker.waitForLog("buffer_worker_heartbeat_recovered");
    await waitFor("the first report", () => first.status !== "running" && first);
    expect(first).toMatchObject({ status: "succeeded", worker_id: "fleet-on-original-2" });
    expect(first.statusReports).toHaveLength(1);

    // Claims resume after the spell: the job queued during it is taken and finished too.
    await waitFor("the second job", () => second.status === "succeeded" && second);
    expect(second.worker_id).toBe("fleet-on-original-2");
    const claims = original.requests().filter((r) => r.path === "/internal/buffer/jobs/claim" && r.status === 200);
    expect(claims.some((r) => r.at >= outageEnded)).toBe(true);
    expect(worker.logRecords().filter((r) => r.msg === "buffer_job_claimed")).toHaveLength(2);
  });

  test("reports a claimed job it cannot run (a URL that is not http) failed, instead of leaving it running forever", async () => {
    const { original, worker } = await startPair("fleet-on-original-3");
    await worker.waitForLog("orchestrator_protocol_detected");
    const bad = original.enqueue({ video_url: "ftp://127.0.0.1/avatar.mp4", audio_url: files.urlFor("/voice.wav") });
    await waitFor("the malformed job to end", () => bad.status !== "pending_buffer" && bad.status !== "running" && bad);
    expect(bad).toMatchObject({ status: "failed", worker_id: "fleet-on-original-3" });
    expect(bad.error).toMatch(/claimed job is malformed: video_url/);
    expect(await worker.waitForLog("buffer_claim_unrunnable_job")).toMatchObject({ bufferJobId: bad.buffer_job_id, jobId: bad.id });

    // The worker goes on claiming: the next, well-formed job succeeds.
    const good = submit(original);
    await waitFor("the good job", () => good.status === "succeeded" && good);
    expect(worker.logRecords().filter((r) => r.msg === "buffer_claim_error")).toEqual([]);
  });

  test("says idle with the reason in error while its engine is down, never a status the original does not know", async () => {
    const closed = await startOriginalOrchestrator();
    const deadEngine = closed.url;
    await closed.close();
    const { original, worker } = await startPair("fleet-on-original-4", { INFERENCE_DRIVER: "http", INFERENCE_URL: deadEngine });
    await worker.waitForLog("orchestrator_protocol_detected");
    const row = await waitFor("a heartbeat naming the engine problem", () => {
      const w = original.worker("fleet-on-original-4");
      return w?.error?.includes("inference engine") && w;
    });
    expect(row.status).toBe("idle");
    expect(original.requests().filter((r) => r.path.endsWith("/heartbeat") && r.status !== 200)).toEqual([]);
    // It claims nothing while the engine cannot run a job.
    expect(original.requests().filter((r) => r.path === "/internal/buffer/jobs/claim")).toEqual([]);
  });
});
