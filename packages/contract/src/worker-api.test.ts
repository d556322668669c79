import { describe, expect, it } from "vitest";
import {
  ClaimJobRequest,
  ClaimJobResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  JobStatusReport,
  MainClaimJobRequest,
  MainClaimJobResponse,
  MainHeartbeatRequest,
  ProgressReport,
} from "./worker-api.js";

const uuid = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";

describe("bodies the original Python workers send are accepted unchanged", () => {
  it("accepts the buffer loop's heartbeat {status, gpu_class, capacity, error}", () => {
    const body = { status: "idle", gpu_class: "RTX-3090-Local-Buffer-1", capacity: 1, error: null };
    expect(HeartbeatRequest.parse(body)).toMatchObject(body);
  });

  it("accepts the buffer loop's heartbeat carrying the repr of its last exception", () => {
    const body = { status: "idle", gpu_class: "Unknown GPU", capacity: 1, error: "ConnectError('boom')" };
    expect(HeartbeatRequest.safeParse(body).success).toBe(true);
  });

  it("accepts the Vast supervisor's heartbeat {status, gpu_class} and defaults capacity to 1", () => {
    expect(HeartbeatRequest.parse({ status: "idle", gpu_class: "Unknown_GPU" }).capacity).toBe(1);
  });

  it("accepts FastWan's heartbeat {status, gpu_class, capacity}", () => {
    expect(HeartbeatRequest.safeParse({ status: "busy", gpu_class: "RTX-5090", capacity: 1 }).success).toBe(true);
  });

  it("ignores fields it does not know, as the original server did", () => {
    const parsed = HeartbeatRequest.parse({ status: "idle", gpu_class: "x", capacity: 1, error: null, provider: "local" });
    expect(parsed).not.toHaveProperty("provider");
  });

  it("accepts the claim body {worker_id} with no wait_ms", () => {
    expect(ClaimJobRequest.parse({ worker_id: "buffer-orch-local-2" })).toEqual({ worker_id: "buffer-orch-local-2", wait_ms: 0 });
  });

  it("accepts the status report after the phantom-success fix {status, error, output_url, metrics}", () => {
    const body = {
      status: "succeeded",
      error: null,
      output_url: "https://f000.backblazeb2.com/file/talking-avatar/avatar/outputs/job-123.mp4",
      metrics: { GENERATION_TIME_SEC: 11.019, PEAK_RAM_KB: null, stage_times: { download: 0.37 } },
    };
    expect(JobStatusReport.parse(body)).toMatchObject(body);
  });

  it("accepts the pre-February status report {status, error}", () => {
    expect(JobStatusReport.safeParse({ status: "failed", error: "HTTPStatusError('500')" }).success).toBe(true);
  });

  it("reads the unified worker's 'success' as 'succeeded'", () => {
    expect(JobStatusReport.parse({ status: "success", output_url: "https://x.example/a.mp4" }).status).toBe("succeeded");
  });

  it("accepts /generate's progress post with config_label and batch_size", () => {
    const body = {
      status: "running",
      progress: 0.42,
      phase: "inferring",
      metrics: { frames_done: 40, frames_total: 100 },
      worker_id: "buffer-local-unified-1",
      config_label: "batch8-local-buffer",
      batch_size: 8,
    };
    expect(ProgressReport.parse(body)).toMatchObject({ progress: 0.42, phase: "inferring", worker_id: "buffer-local-unified-1" });
  });
});

describe("malformed worker bodies are rejected", () => {
  it.each([
    ["an unknown status", { status: "sleeping", gpu_class: "x" }],
    ["a capacity of zero", { status: "idle", capacity: 0 }],
    ["a fractional capacity", { status: "idle", capacity: 1.5 }],
    ["a string capacity", { status: "idle", capacity: "1" }],
    ["no status at all", { gpu_class: "x" }],
    ["active_jobs that are not uuids", { status: "busy", active_jobs: ["nope"] }],
  ])("rejects a heartbeat with %s", (_, body) => {
    expect(HeartbeatRequest.safeParse(body).success).toBe(false);
  });

  it.each([
    ["an unknown status", { status: "done" }],
    ["a non-http output_url", { status: "succeeded", output_url: "file:///etc/passwd" }],
    ["a bad error_type", { status: "failed", error_info: { error_type: "oops", stage: "upload", message: "m", retryable: true } }],
  ])("rejects a status report with %s", (_, body) => {
    expect(JobStatusReport.safeParse(body).success).toBe(false);
  });

  it.each([
    ["progress above 1", { progress: 1.5, worker_id: "w" }],
    ["negative progress", { progress: -0.1, worker_id: "w" }],
    ["no worker_id", { progress: 0.5 }],
    ["a worker_id with a slash", { progress: 0.5, worker_id: "a/b" }],
  ])("rejects a progress report with %s", (_, body) => {
    expect(ProgressReport.safeParse(body).success).toBe(false);
  });

  it("rejects a claim that waits longer than 30 s", () => {
    expect(ClaimJobRequest.safeParse({ worker_id: "w", wait_ms: 30_001 }).success).toBe(false);
  });
});

describe("replies keep the shapes the original workers read", () => {
  it("answers a heartbeat with detail exactly 'ok'", () => {
    const reply = { detail: "ok", heartbeat_interval_sec: 5, lease_ttl_sec: 30, cancel: [], lost: [], drain: false };
    expect(HeartbeatResponse.parse(reply).detail).toBe("ok");
    expect(HeartbeatResponse.safeParse({ ...reply, detail: "OK" }).success).toBe(false);
  });

  it("answers an empty claim with {job: null}", () => {
    expect(ClaimJobResponse.parse({ job: null })).toEqual({ job: null });
  });

  it("carries the fields the original buffer loop reads from a claimed job", () => {
    const job = {
      buffer_job_id: uuid,
      musetalk_job_id: uuid,
      video_url: "https://cdn.example/v.mp4",
      audio_url: "https://cdn.example/a.wav",
      aspect_ratio: "9:16",
      resolution: "720p",
      params: {},
      attempt: 1,
      lease_expires_at: new Date().toISOString(),
    };
    expect(ClaimJobResponse.parse({ job }).job).toMatchObject({ buffer_job_id: uuid, video_url: job.video_url });
  });
});

describe("bodies the original main-tier worker (unified_worker.py) sends are accepted unchanged", () => {
  it("accepts its heartbeat with current_job_id, provider, worker_type and system_info", () => {
    const body = {
      status: "busy",
      current_job_id: uuid,
      provider: "salad",
      gpu_class: "RTX 4090 (24 GB)",
      worker_type: "main",
      system_info: { cpu_cores_physical: 8, cpu_cores_logical: 16, cpu_model: "x86_64", ram_total_gb: 31.3, disk_free_gb: 120.5, download_speed_mbps: null },
    };
    expect(MainHeartbeatRequest.parse(body)).toEqual(body);
    expect(MainHeartbeatRequest.safeParse({ ...body, status: "idle", current_job_id: null, system_info: {} }).success).toBe(true);
  });

  it("accepts its claim body and answers the job without buffer_job_id", () => {
    expect(MainClaimJobRequest.safeParse({ worker_id: "salad-node-1", worker_type: "main", gpu_class: "unknown" }).success).toBe(true);
    const job = { musetalk_job_id: uuid, video_url: "https://cdn.example.com/v.mp4", audio_url: "https://cdn.example.com/a.wav", aspect_ratio: "9:16", resolution: "720p", params: {}, attempt: 1, lease_expires_at: "2026-01-02T00:00:00.000Z" };
    expect(MainClaimJobResponse.parse({ job }).job).not.toHaveProperty("buffer_job_id");
  });

  it("accepts its final reports on /progress: succeeded (or success) with output_url and metrics, failed with an error", () => {
    const success = ProgressReport.parse({ status: "success", progress: 1.0, phase: "completed", worker_id: "salad-node-1", metrics: { total_time: 3 }, error: null, output_url: "https://f000.backblazeb2.com/file/b/o.mp4" });
    expect(success).toMatchObject({ status: "succeeded", output_url: "https://f000.backblazeb2.com/file/b/o.mp4" });
    const failed = ProgressReport.parse({ status: "failed", progress: 0.0, phase: "failed", worker_id: "salad-node-1", metrics: null, error: "HTTP 422: {}" });
    expect(failed).toMatchObject({ status: "failed", error: "HTTP 422: {}" });
    expect(ProgressReport.safeParse({ status: "done", progress: 1, worker_id: "w" }).success).toBe(false);
  });
});
