import { HEADERS } from "@fleet/contract";
import type { App } from "@fleet/orchestrator";
import { FUZZ_INTERNAL_KEY, FUZZ_PUBLIC_KEY } from "./fuzz-app.js";
import type { FuzzWorld } from "./route-requests.js";

async function send(app: App, method: "GET" | "POST", url: string, key: "internal" | "public", body?: unknown): Promise<Record<string, unknown>> {
  const res = await app.inject({
    method,
    url,
    headers: key === "internal" ? { [HEADERS.internalApiKey]: FUZZ_INTERNAL_KEY } : { [HEADERS.apiKey]: FUZZ_PUBLIC_KEY },
    ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
  });
  if (res.statusCode >= 300) throw new Error(`seeding: ${method} ${url} → ${res.statusCode} ${res.body}`);
  return res.json<Record<string, unknown>>();
}

/**
 * Real rows for the fuzz to aim at, made through the API itself: workers that heartbeat, queued
 * jobs, running attempts, one finished attempt, and a genuine list cursor.
 */
export async function seedWorld(app: App): Promise<FuzzWorld> {
  const workerIds = ["fuzz-w1", "fuzz-w2", "fuzz-w3"];
  for (const id of workerIds) {
    await send(app, "POST", `/internal/buffer/workers/${id}/heartbeat`, "internal", { status: "idle", gpu_class: "RTX 4090", capacity: 2, error: null });
  }
  const jobIds: string[] = [];
  for (let i = 0; i < 8; i++) {
    const job = await send(app, "POST", "/v1/avatar/jobs", "public", {
      video_url: `https://media.fuzz.internal/avatar-${i}.mp4`,
      audio_url: `https://media.fuzz.internal/voice-${i}.wav`,
    });
    jobIds.push(String(job.id));
  }
  const bufferJobIds: string[] = [];
  for (const id of ["fuzz-w1", "fuzz-w1", "fuzz-w2"]) {
    const claimed = await send(app, "POST", "/internal/buffer/jobs/claim", "internal", { worker_id: id, wait_ms: 0 });
    const job = claimed.job as { buffer_job_id?: string } | null;
    if (!job?.buffer_job_id) throw new Error(`seeding: ${id} claimed nothing: ${JSON.stringify(claimed)}`);
    bufferJobIds.push(job.buffer_job_id);
  }
  await send(app, "POST", `/internal/buffer/jobs/${bufferJobIds[0]}/status`, "internal", {
    status: "succeeded",
    output_url: "https://media.fuzz.internal/out.mp4",
    metrics: {},
    error: null,
  });
  const page = await send(app, "GET", "/v1/avatar/jobs?limit=2", "public");
  return { workerIds, jobIds, bufferJobIds, cursor: typeof page.next_cursor === "string" ? page.next_cursor : null };
}
