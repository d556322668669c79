import { describe, expect, it } from "vitest";
import { createShutdown } from "./drain.js";
import { JobAbortedError, abortReasonOf, type AbortReason } from "./errors/job-error.js";
import { createJobRunner, type ExecuteJob } from "./job-runner.js";
import { toJobInput } from "./pipeline/job-input.js";
import { createProgressReporter } from "./progress-reporter.js";
import { captureLogger } from "./test-support/capture-logger.js";
import { WakeSignal } from "@fleet/runtime";
import { initialFlags } from "./worker-state.js";

/**
 * A real job runner whose one job ends when the test says so or when it is aborted, and a
 * shutdown over it with no orchestrator (no loops, no outbox): the drain's own order is tested.
 */
function setup(graceMs: number) {
  const logs = captureLogger();
  const changes = new WakeSignal();
  const flags = initialFlags();
  const order: string[] = [];
  let finish = () => {};
  let abortedWith: AbortReason | null = null;
  const execute: ExecuteJob = (_input, { signal }) =>
    new Promise((resolve, reject) => {
      finish = () => resolve({ status: "succeeded", outputUrl: "http://127.0.0.1:9/out.mp4", metrics: {} });
      signal.addEventListener("abort", () => {
        abortedWith = abortReasonOf(signal);
        reject(new JobAbortedError(abortedWith));
      });
    });
  const runner = createJobRunner({
    capacity: 1,
    workerId: "w-1",
    log: logs.log,
    outbox: null,
    changes,
    execute,
    progressFor: (input) => createProgressReporter({ client: null, workerId: "w-1", jobId: input.jobId, bufferJobId: null, timeoutMs: 1_000, log: logs.log }),
  });
  const job = toJobInput(
    { musetalk_job_id: "job-1", video_url: "http://127.0.0.1:9/v.mp4", audio_url: "http://127.0.0.1:9/a.wav", aspect_ratio: "9:16", resolution: "720p", params: {} },
    { attemptId: "generate-1", bufferJobId: null, attempt: null },
  );
  const outcome = runner.runDirect(job, new AbortController().signal).catch((err: unknown) => err);
  const shutdown = createShutdown({
    workerId: "w-1",
    graceMs,
    log: logs.log,
    flags,
    changes,
    runner,
    claimLoop: null,
    heartbeat: null,
    outbox: null,
    closeInOrder: [() => void order.push("first"), () => Promise.resolve().then(() => void order.push("second"))],
  });
  return { logs, flags, order, runner, shutdown, outcome, finish: () => finish(), abortedWith: () => abortedWith };
}

describe("createShutdown", () => {
  it("waits for a running job within the grace, then closes the parts in the order given", async () => {
    const t = setup(60_000);
    await expect.poll(() => t.runner.running()).toBe(1);
    const drained = t.shutdown.drain();
    expect(t.shutdown.drain()).toBe(drained);
    expect(t.flags.draining).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(t.order).toEqual([]);
    t.finish();
    await drained;
    expect(await t.outcome).toMatchObject({ status: "succeeded" });
    expect(t.order).toEqual(["first", "second"]);
    expect(t.logs.messages("buffer_worker_drain_timeout")).toHaveLength(0);
    expect(t.logs.messages("buffer_worker_stopped")).toHaveLength(1);
  });

  it("releases a job still running when the grace runs out", async () => {
    const t = setup(50);
    await expect.poll(() => t.runner.running()).toBe(1);
    await t.shutdown.drain();
    expect(t.abortedWith()).toBe("released");
    expect(t.logs.messages("buffer_worker_drain_timeout")).toHaveLength(1);
    expect(t.order).toEqual(["first", "second"]);
  });

  it("on abortNow releases running jobs at once and the drain waits for no grace", async () => {
    const t = setup(600_000);
    await expect.poll(() => t.runner.running()).toBe(1);
    t.shutdown.abortNow();
    expect(t.flags.forced).toBe(true);
    await t.shutdown.drain();
    expect(t.abortedWith()).toBe("released");
    expect(t.logs.messages("buffer_worker_abort_requested")).toHaveLength(1);
    expect(t.runner.running()).toBe(0);
  });
});
