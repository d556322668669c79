import { describe, expect, it } from "vitest";
import { GenerateRequest } from "./inference-api.js";
import {
  ClaimJobRequest,
  ClaimJobResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  JobStatusReport,
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
