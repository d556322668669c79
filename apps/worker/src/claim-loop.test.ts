import { afterEach, describe, expect, it } from "vitest";
import { startClaimLoop, type ClaimLoop } from "./claim-loop.js";
import { createOrchestratorClient, type OrchestratorClient } from "./orchestrator-client.js";
import { captureLogger } from "./test-support/capture-logger.js";
import { json, startTestHttpServer, type TestHttpServer } from "./test-support/test-http-server.js";
import { WakeSignal } from "@fleet/runtime";
import { sleep } from "./util/sleep.js";

const job = {
  buffer_job_id: "3f1c2a4e-8b7d-4c3e-9a1f-2b3c4d5e6f70",
  musetalk_job_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
  video_url: "http://127.0.0.1:9/v.mp4",
  audio_url: "http://127.0.0.1:9/a.wav",
  aspect_ratio: "9:16",
  resolution: "720p",
};

let server: TestHttpServer | null = null;
let client: OrchestratorClient | null = null;
let loop: ClaimLoop | null = null;
afterEach(async () => {
  await loop?.stop();
  await client?.close();
  await server?.close();
  loop = server = client = null;
});

async function until(cond: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await sleep(20);
  }
}

describe("the claim loop", () => {
  it("survives a throw from its own callbacks: logs it, backs off and claims again", async () => {
    let claims = 0;
    server = await startTestHttpServer((_req, res) => {
      claims += 1;
      json(res, 200, { job: claims <= 2 ? job : null, reason: claims <= 2 ? undefined : "no_job" });
    });
    const logs = captureLogger();
    client = createOrchestratorClient({ baseUrl: server.url, apiKey: "k", timeoutMs: 1000 });
    let blockedCalls = 0;
    const taken: string[] = [];
    loop = startClaimLoop({
      client,
      workerId: "w1",
      waitMs: 0,
      idlePollMs: 20,
      timeoutMs: 1000,
      log: logs.log,
      changes: new WakeSignal(),
      // The first check throws (a bug in a readiness rule), the first job's hand-off throws too.
      blockedBy: () => {
        blockedCalls += 1;
        if (blockedCalls === 1) throw new Error("readiness rule broke");
        return null;
      },
      onJob: (j) => {
        if (taken.length === 0) {
          taken.push("thrown");
          throw new Error("could not register the job");
        }
        taken.push(j.buffer_job_id);
      },
      onUnrunnable: () => undefined,
    });
    await until(() => taken.length >= 2 && claims >= 3);
    expect(taken).toEqual(["thrown", job.buffer_job_id]);
    const errors = logs.messages("buffer_claim_loop_error");
    expect(errors.map((r) => (r.err as { message: string }).message)).toEqual(["readiness rule broke", "could not register the job"]);
    expect(logs.messages("buffer_claim_loop_crashed")).toEqual([]);
  });
});
