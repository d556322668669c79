import type { ClaimedJobReply, JsonObject, UnrunnableJobReply } from "@fleet/contract";
import type { Logger } from "./logger.js";
import type { Outbox, OutboxEntry } from "./outbox.js";
import { redactUrl } from "./pipeline/download.js";
import { JobAbortedError, JobError, type AbortReason } from "./errors/job-error.js";
import { toJobInput, type JobInput } from "./pipeline/job-input.js";
import type { JobOutcome } from "./pipeline/run-job.js";
import type { ProgressReporter } from "./progress-reporter.js";
import type { WakeSignal } from "@fleet/runtime";

export type ExecuteJob = (
  input: JobInput,
  ctx: { signal: AbortSignal; onProgress: (progress: number, phase: string, metrics?: JsonObject) => void },
) => Promise<JobOutcome>;

interface RunningJob {
  input: JobInput;
  controller: AbortController;
  startedAt: number;
  done: Promise<unknown>;
}

export interface JobRunner {
  readonly capacity: number;
  running(): number;
  freeSlots(): number;
  /** buffer_job_ids held: the running ones plus those whose report is not acknowledged yet. */
  heldBufferJobIds(): string[];
  /** Starts a claimed job; its terminal report goes through the outbox. */
  startClaimed(job: ClaimedJobReply): void;
  /** A claim the worker cannot parse into a job: reported failed, never run. */
  rejectUnrunnable(job: UnrunnableJobReply, problem: string): void;
  /** Runs a job for POST /generate once a slot is free; the caller gets the outcome. */
  runDirect(input: JobInput, signal: AbortSignal): Promise<JobOutcome>;
  abort(bufferJobId: string, reason: AbortReason): boolean;
  abortAll(reason: AbortReason): void;
  /** True once nothing runs; false if `timeoutMs` passed first. */
  whenIdle(timeoutMs: number): Promise<boolean>;
}

/**
 * Owns the job slots (BUFFER_CAPACITY) and what happens when a job ends: its outcome becomes a
 * terminal report, written to the outbox before the slot is freed, so a heartbeat never stops
 * naming a job the orchestrator has not heard the end of.
 */
export function createJobRunner(opts: {
  capacity: number;
  workerId: string;
  log: Logger;
  outbox: Outbox | null;
  execute: ExecuteJob;
  progressFor: (input: JobInput, onLeaseLost: () => void) => ProgressReporter;
  changes: WakeSignal;
  /** `report` is what was (or will be) sent; null for a lost attempt, which reports nothing. */
  onOutcome?: (outcome: "succeeded" | "failed" | "cancelled" | "released" | "lost", seconds: number, report: OutboxEntry["report"] | null) => void;
}): JobRunner {
  const { log } = opts;
  const jobs = new Map<string, RunningJob>();

  function begin(input: JobInput, run: (job: RunningJob) => Promise<unknown>): RunningJob {
    const job: RunningJob = { input, controller: new AbortController(), startedAt: Date.now(), done: Promise.resolve() };
    jobs.set(input.attemptId, job);
    opts.changes.notify();
    job.done = run(job)
      .catch((err: unknown) => log.error({ err, jobId: input.jobId, bufferJobId: input.bufferJobId }, "buffer_job_crashed"))
      .finally(() => {
        jobs.delete(input.attemptId);
        opts.changes.notify();
      });
    return job;
  }

  async function runClaimed(job: RunningJob, claimed: ClaimedJobReply) {
    const id = claimed.buffer_job_id;
    const progress = opts.progressFor(job.input, () => job.controller.abort("lost"));
    const fields = { bufferJobId: id, jobId: claimed.musetalk_job_id, attempt: claimed.attempt, workerId: opts.workerId };
    let report: OutboxEntry["report"] | null;
    /** Why a failed attempt failed, as an Error so its log line carries it as `{ err }`. */
    let failure: Error | null = null;
    let outcomeName: "succeeded" | "failed" | "cancelled" | "released" | "lost";
    try {
      const outcome = await opts.execute(job.input, { signal: job.controller.signal, onProgress: progress.update });
      if (outcome.status === "succeeded") {
        outcomeName = "succeeded";
        report = { status: "succeeded", error: null, output_url: outcome.outputUrl, metrics: outcome.metrics, error_info: null };
      } else {
        outcomeName = "failed";
        report = { status: "failed", error: outcome.errorInfo.message, output_url: null, metrics: outcome.metrics, error_info: outcome.errorInfo };
        failure = new JobError(outcome.errorInfo);
      }
    } catch (err) {
      const reason = err instanceof JobAbortedError ? err.reason : null;
      if (reason === "cancelled") {
        outcomeName = "cancelled";
        report = { status: "cancelled", error: "cancelled on request", output_url: null, metrics: null, error_info: null };
      } else if (reason === "lost") {
        outcomeName = "lost";
        report = null;
      } else if (reason === "released") {
        outcomeName = "released";
        report = { status: "released", error: "worker shutting down: job handed back", output_url: null, metrics: null, error_info: null };
      } else {
        // runJob turns every failure into an outcome; reaching here is a bug, reported as such.
        log.error({ ...fields, err }, "buffer_job_crashed");
        outcomeName = "failed";
        const message = err instanceof Error ? err.message : String(err);
        failure = err instanceof Error ? err : new Error(message);
        report = {
          status: "failed",
          error: message,
          output_url: null,
          metrics: null,
          error_info: { error_type: "unknown_error", stage: "unknown", message, retryable: false, details: null, fault: "worker" },
        };
      }
    }
    await progress.settle();
    const seconds = (Date.now() - job.startedAt) / 1000;
    opts.onOutcome?.(outcomeName, seconds, report);
    if (report) {
      const level = outcomeName === "succeeded" ? "info" : outcomeName === "failed" ? "warn" : "info";
      log[level](
        {
          ...fields,
          seconds,
          // A private bucket's link carries its download authorization in the query.
          outputUrl: report.output_url ? redactUrl(report.output_url) : report.output_url,
          errorType: report.error_info?.error_type,
          stage: report.error_info?.stage,
          retryable: report.error_info?.retryable,
          ...(failure ? { err: failure } : {}),
        },
        `buffer_job_${outcomeName}`,
      );
      if (opts.outbox) {
        await opts.outbox.deliver({
          buffer_job_id: id,
          musetalk_job_id: claimed.musetalk_job_id,
          worker_id: opts.workerId,
          written_at: new Date().toISOString(),
          report,
        });
      }
    } else {
      log.warn({ ...fields, seconds }, "buffer_job_lost");
    }
  }

  return {
    capacity: opts.capacity,
    running: () => jobs.size,
    freeSlots: () => Math.max(0, opts.capacity - jobs.size),
    heldBufferJobIds() {
      const ids = new Set<string>();
      for (const j of jobs.values()) if (j.input.bufferJobId) ids.add(j.input.bufferJobId);
      for (const id of opts.outbox?.pendingIds() ?? []) ids.add(id);
      return [...ids];
    },
    rejectUnrunnable(job, problem) {
      const message = `claimed job is malformed: ${problem}`;
      void opts.outbox?.deliver({
        buffer_job_id: job.buffer_job_id,
        musetalk_job_id: job.musetalk_job_id ?? "unknown",
        worker_id: opts.workerId,
        written_at: new Date().toISOString(),
        report: {
          status: "failed",
          error: message,
          output_url: null,
          metrics: null,
          // Its input is what is wrong: no other worker would do better, so never retried.
          error_info: { error_type: "media_error", stage: "validation", message, retryable: false, details: null },
        },
      });
    },
    startClaimed(claimed) {
      const input = toJobInput(claimed, { attemptId: claimed.buffer_job_id, bufferJobId: claimed.buffer_job_id, attempt: claimed.attempt });
      if (jobs.has(input.attemptId)) return;
      if (jobs.size >= opts.capacity) {
        // A POST /generate took the last slot while this claim was in flight: hand the job back
        // (released: requeued at once, no failure counted) rather than run past BUFFER_CAPACITY.
        log.warn({ bufferJobId: claimed.buffer_job_id, jobId: claimed.musetalk_job_id, running: jobs.size, capacity: opts.capacity }, "buffer_job_over_capacity_released");
        const report = { status: "released" as const, error: "worker at capacity: job handed back", output_url: null, metrics: null, error_info: null };
        opts.onOutcome?.("released", 0, report);
        void opts.outbox?.deliver({
          buffer_job_id: claimed.buffer_job_id,
          musetalk_job_id: claimed.musetalk_job_id,
          worker_id: opts.workerId,
          written_at: new Date().toISOString(),
          report,
        }).catch((err: unknown) => log.error({ err, bufferJobId: claimed.buffer_job_id }, "buffer_job_release_failed"));
        return;
      }
      begin(input, (job) => runClaimed(job, claimed));
    },
    async runDirect(input, signal) {
      while (jobs.size >= opts.capacity) {
        if (signal.aborted) throw new JobAbortedError("released");
        await opts.changes.wait(1_000, signal);
      }
      const box: { result?: Promise<JobOutcome> } = {};
      const job = begin(input, (j) => {
        const progress = opts.progressFor(input, () => j.controller.abort("lost"));
        box.result = opts.execute(input, { signal: j.controller.signal, onProgress: progress.update }).finally(() => progress.settle());
        return box.result.catch(() => undefined);
      });
      const onAbort = () => job.controller.abort("released");
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        return await (box.result as Promise<JobOutcome>);
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    },
    abort(bufferJobId, reason) {
      const job = jobs.get(bufferJobId);
      if (!job || job.controller.signal.aborted) return false;
      log.info({ bufferJobId, jobId: job.input.jobId, reason }, "buffer_job_abort");
      job.controller.abort(reason);
      return true;
    },
    abortAll(reason) {
      for (const [id, job] of jobs) {
        if (job.controller.signal.aborted) continue;
        log.info({ bufferJobId: id, jobId: job.input.jobId, reason }, "buffer_job_abort");
        job.controller.abort(reason);
      }
    },
    async whenIdle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (jobs.size > 0) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await opts.changes.wait(Math.min(left, 1_000));
      }
      return true;
    },
  };
}
