import { describe, expect, it } from "vitest";
import { GenerateRequest } from "./inference-api.js";
import {
  ClaimJobReply,
  ClaimJobRequest,
  ClaimJobResponse,
  HeartbeatReply,
  HeartbeatRequest,
  HeartbeatResponse,
  JobStatusReport,
  JobStatusReportReply,
  MainClaimJobRequest,
  MainClaimJobResponse,
  MainHeartbeatRequest,
  ProgressReport,
  ProgressReportReply,
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
      output_url: "https://93.184.216.34/file/talking-avatar/avatar/outputs/job-123.mp4",
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

describe("failures say whose fault they are", () => {
  it("accepts a download_error marked as the job's fault, and an ErrorInfo without fault (older workers)", () => {
    const info = { error_type: "download_error", stage: "download", message: "HTTP 503", retryable: true, details: null, fault: "job" };
    expect(JobStatusReport.parse({ status: "failed", error_info: info }).error_info).toMatchObject({ error_type: "download_error", fault: "job" });
    const legacy = { error_type: "media_error", stage: "validation", message: "bad", retryable: false };
    expect(JobStatusReport.parse({ status: "failed", error_info: legacy }).error_info?.fault).toBeUndefined();
  });

  it("refuses a fault other than job or worker", () => {
    const info = { error_type: "media_error", stage: "validation", message: "bad", retryable: false, fault: "nobody" };
    expect(JobStatusReport.safeParse({ status: "failed", error_info: info }).success).toBe(false);
  });
});

describe("the original /generate", () => {
  it("takes only UUIDs as musetalk_job_id: the id names the output key", () => {
    const body = { video_url: "http://127.0.0.1:9000/v.mp4", audio_url: "http://127.0.0.1:9000/a.wav", aspect_ratio: "9:16", resolution: "720p" };
    expect(GenerateRequest.safeParse({ ...body, musetalk_job_id: uuid }).success).toBe(true);
    for (const id of [`${uuid}.mp4/../${uuid}`, "../../x", "job-123", ""]) {
      expect(GenerateRequest.safeParse({ ...body, musetalk_job_id: id }).success, id).toBe(false);
    }
  });
});

describe("reply schemas (how a worker reads either orchestrator)", () => {
  const bufferJobId = "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70";
  const job = {
    buffer_job_id: bufferJobId,
    musetalk_job_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    video_url: "http://127.0.0.1:1/v.mp4",
    audio_url: "http://127.0.0.1:1/a.wav",
    aspect_ratio: "9:16",
    resolution: "720p",
  };

  it("reads every Fleet response unchanged, and knows it came from Fleet", () => {
    const fleet = HeartbeatResponse.parse({ detail: "ok", heartbeat_interval_sec: 5, lease_ttl_sec: 30, cancel: [bufferJobId], lost: [], drain: true });
    expect(HeartbeatReply.parse(fleet)).toEqual({ ...fleet, protocol: "fleet" });
    const claimed = ClaimJobResponse.parse({ job: { ...job, params: { a: 1 }, attempt: 2, lease_expires_at: "2026-01-01T00:00:00Z" } });
    expect(ClaimJobReply.parse(claimed)).toEqual(claimed);
    const named = ClaimJobResponse.parse({ job: { ...claimed.job, video_sha256: "0".repeat(64) } });
    expect(ClaimJobReply.parse(named)).toEqual(named);
    // A malformed hash is never run as if the job named none.
    expect(ClaimJobReply.parse({ job: { ...claimed.job, video_sha256: "ABC" } }).job).toMatchObject({ unrunnable: true });
    expect(JobStatusReportReply.parse({ detail: "ok", job_status: "queued" })).toEqual({ job_status: "queued" });
  });

  it("reads the original's shorter replies with defaults that mean nothing to do", () => {
    expect(HeartbeatReply.parse({ detail: "ok" })).toEqual({ detail: "ok", cancel: [], lost: [], drain: false, protocol: "original" });
    expect(ClaimJobReply.parse({ job: job }).job).toEqual({ ...job, params: {}, attempt: null, lease_expires_at: null });
    expect(ClaimJobReply.parse({ job: null })).toEqual({ job: null });
    expect(JobStatusReportReply.parse(undefined)).toEqual({ job_status: null });
    expect(ProgressReportReply.parse({ detail: "ok" })).toEqual({ progress: null });
  });

  it("stays strict where data is at stake: ids in cancel lists, and a bad URL makes the job unrunnable, not runnable", () => {
    expect(HeartbeatReply.safeParse({ detail: "ok", cancel: ["not-an-id"] }).success).toBe(false);
    expect(HeartbeatReply.safeParse("ok").success).toBe(false);
    expect(ClaimJobReply.parse({ job: { ...job, video_url: "ftp://127.0.0.1/v.mp4" } }).job).toMatchObject({ buffer_job_id: bufferJobId, unrunnable: true });
    expect(ClaimJobReply.safeParse({ job: { ...job, buffer_job_id: "../x" } }).success).toBe(false);
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
    const job = { musetalk_job_id: uuid, video_url: "https://93.184.216.34/v.mp4", audio_url: "https://93.184.216.34/a.wav", aspect_ratio: "9:16", resolution: "720p", params: {}, attempt: 1, lease_expires_at: "2026-01-02T00:00:00.000Z" };
    expect(MainClaimJobResponse.parse({ job }).job).not.toHaveProperty("buffer_job_id");
  });

  it("accepts its final reports on /progress: succeeded (or success) with output_url and metrics, failed with an error", () => {
    const success = ProgressReport.parse({ status: "success", progress: 1.0, phase: "completed", worker_id: "salad-node-1", metrics: { total_time: 3 }, error: null, output_url: "https://93.184.216.34/file/b/o.mp4" });
    expect(success).toMatchObject({ status: "succeeded", output_url: "https://93.184.216.34/file/b/o.mp4" });
    const failed = ProgressReport.parse({ status: "failed", progress: 0.0, phase: "failed", worker_id: "salad-node-1", metrics: null, error: "HTTP 422: {}" });
    expect(failed).toMatchObject({ status: "failed", error: "HTTP 422: {}" });
    expect(ProgressReport.safeParse({ status: "done", progress: 1, worker_id: "w" }).success).toBe(false);
  });
});
