import type { EnrollWorkerResponse } from "@fleet/contract";
import { describe, expect } from "vitest";
import { e2eTest, Fleet } from "../test-support/fleet-harness.js";

async function enroll(fleet: Fleet, workerId: string): Promise<string> {
  const res = await fetch(`${fleet.orchestrator.url}/internal/admin/workers/${workerId}/tokens`, {
    method: "POST",
    headers: { "x-internal-api-key": fleet.orchestrator.internalApiKey },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as EnrollWorkerResponse).token;
}

describe("a worker with its own WORKER_TOKEN", () => {
  e2eTest("runs jobs with the token alone (no INTERNAL_API_KEY), and a box using another worker's token is refused with 403", async ({ databaseUrl }) => {
    const fleet = await Fleet.start(databaseUrl);
    try {
      const token = await enroll(fleet, "tok-box");
      // internalApiKey "" leaves INTERNAL_API_KEY out of the worker's environment.
      const worker = await fleet.startWorker("tok-box", { internalApiKey: "", env: { WORKER_TOKEN: token, INFERENCE_DRIVER: "ffmpeg" } });
      await worker.waitForLog("buffer_worker_heartbeat_ok");
      const job = await fleet.submit();
      const done = await fleet.waitForStatus(job.id, "succeeded");
      expect(done.worker_id).toBe("tok-box");
      expect(worker.logs().join("\n")).not.toContain(token);

      const imposter = await fleet.startWorker("tok-imposter", { internalApiKey: "", env: { WORKER_TOKEN: token } });
      const refused = await imposter.waitForLog("buffer_worker_loop_error", { timeoutMs: 20_000 });
      expect(refused).toMatchObject({ statusCode: 403 });
      expect(String(refused.body)).toContain("worker_identity_mismatch");
      expect(await fleet.workerRow("tok-imposter")).toBeNull();
    } finally {
      await fleet.close();
    }
  });
});
