import { describe, expect } from "vitest";
import { ageHeartbeat, appTest, call, claimJob, createJobViaApi, heartbeat, reportStatus } from "./test-support/harness.js";

async function scrape(app: Parameters<typeof call>[0]): Promise<string> {
  return (await call(app, "GET", "/metrics", { key: null })).body;
}

/** Database gauges come from a cache the refresher fills every METRICS_REFRESH_SEC: wait for it. */
async function scrapeUntil(app: Parameters<typeof call>[0], seen: (text: string) => boolean): Promise<string> {
  let text = await scrape(app);
  for (const deadline = Date.now() + 20_000; !seen(text) && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 50));
    text = await scrape(app);
  }
  return text;
}

describe("/metrics for watching a fleet", () => {
  appTest("shows each worker's liveness as the database judges it, so a silent worker reads offline", async ({ startApp }) => {
    const t = await startApp({ METRICS_REFRESH_SEC: "0.1" });
    await heartbeat(t.app, "gpu-a", {
      gpu_class: "RTX 4090",
      engine: { driver: "http", state: "ready", lip_sync: true },
      system: { gpu_name: "NVIDIA GeForce RTX 4090" },
    });
    await heartbeat(t.app, "gpu-b", { gpu_class: "A100" });
    let text = await scrapeUntil(t.app, (x) => x.includes('worker_id="gpu-b"'));
    expect(text).toContain('fleet_buffer_worker_online{worker_id="gpu-a",gpu_class="RTX 4090"} 1');
    expect(text).toContain('fleet_buffer_worker_engine_ready{worker_id="gpu-a",gpu_class="RTX 4090"} 1');
    expect(text).toContain('fleet_buffer_worker_engine_ready{worker_id="gpu-b",gpu_class="A100"} 0');
    expect(text).toContain('fleet_buffer_worker_quarantined{worker_id="gpu-a",gpu_class="RTX 4090"} 0');
    expect(text).toMatch(/fleet_buffer_worker_info\{worker_id="gpu-a",gpu_class="RTX 4090",status="idle",engine_state="ready",gpu="NVIDIA GeForce RTX 4090",version="[^"]*"\} 1/);

    await ageHeartbeat(t.db, "gpu-b", 3600);
    text = await scrapeUntil(t.app, (x) => x.includes('fleet_buffer_worker_online{worker_id="gpu-b",gpu_class="A100"} 0'));
    expect(text).toContain('fleet_buffer_worker_online{worker_id="gpu-b",gpu_class="A100"} 0');
    const age = Number(/fleet_buffer_worker_heartbeat_age_seconds\{worker_id="gpu-b",gpu_class="A100"\} ([\d.]+)/.exec(text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(3600);
  });

  appTest("counts heartbeats refused with a 4xx by worker, queue waits at claim, and failures by stage and error type", async ({ t }) => {
    const refused = await call(t.app, "POST", "/internal/buffer/workers/gpu-wrong-key/heartbeat", {
      key: "not-the-internal-key",
      body: { status: "idle", gpu_class: "RTX 4090", capacity: 1, error: null },
    });
    expect(refused.status).toBe(401);
    expect(await scrape(t.app)).toContain('fleet_heartbeats_rejected_total{worker_id="gpu-wrong-key",status_code="401"} 1');

    await heartbeat(t.app, "gpu-a");
    expect((await createJobViaApi(t.app)).status).toBe(201);
    const job = await claimJob(t.app, "gpu-a");
    let text = await scrape(t.app);
    expect(text).toContain("fleet_queue_wait_seconds_count 1");
    expect(text).toContain('fleet_queue_wait_seconds_bucket{le="+Inf"} 1');

    const report = await reportStatus(t.app, job.buffer_job_id, {
      status: "failed",
      error: "upload refused",
      output_url: null,
      metrics: null,
      error_info: { error_type: "processing_error", stage: "upload", message: "upload refused", retryable: true },
    });
    expect(report.status).toBe(200);
    text = await scrape(t.app);
    expect(text).toContain('fleet_attempt_failures_total{stage="upload",error_type="processing_error"} 1');
  });
});
