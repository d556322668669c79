import type { JsonObject } from "@fleet/contract";
import type { Logger } from "./logger.js";
import type { OrchestratorClient } from "./orchestrator-client.js";
import { wellFormed } from "./util/well-formed.js";

export interface ProgressReporter {
  /** Never throws, never waits on the network: the job must not slow down for its progress bar. */
  update: (progress: number, phase: string, metrics?: JsonObject) => void;
  /** Waits for the send in flight (used before the terminal report so it cannot overtake it). */
  settle: () => Promise<void>;
}

const MIN_STEP = 0.02;
const MAX_SILENCE_MS = 2_000;
const MIN_SPACING_MS = 250;

/**
 * The one progress owner of a job, so its value never goes backwards:
 * monotonic, throttled to a 2 % step or 2 s, one request in flight with the newest value queued
 * behind it. A 409 lease_lost means another attempt owns the job now: `onLeaseLost` aborts ours.
 */
export function createProgressReporter(opts: {
  client: OrchestratorClient | null;
  workerId: string;
  jobId: string;
  bufferJobId: string | null;
  timeoutMs: number;
  log: Logger;
  onLeaseLost?: () => void;
}): ProgressReporter {
  let sent = -1;
  let sentPhase: string | null = null;
  let sentAt = 0;
  let highest = 0;
  let pending: { progress: number; phase: string; metrics?: JsonObject } | null = null;
  let inFlight: Promise<void> | null = null;
  let warned = false;
  let timer: NodeJS.Timeout | null = null;

  function due(p: { progress: number; phase: string }): boolean {
    if (p.phase !== sentPhase) return true;
    if (p.progress - sent >= MIN_STEP) return true;
    return p.progress > sent && Date.now() - sentAt >= MAX_SILENCE_MS;
  }

  function pump() {
    if (!opts.client || inFlight || !pending) return;
    if (pending.progress <= sent && pending.phase === sentPhase) {
      pending = null;
      return;
    }
    if (!due(pending)) {
      // Not worth a request yet; look again when the silence limit is reached.
      timer ??= setTimeout(() => {
        timer = null;
        pump();
      }, MAX_SILENCE_MS);
      return;
    }
    const wait = MIN_SPACING_MS - (Date.now() - sentAt);
    if (wait > 0) {
      timer ??= setTimeout(() => {
        timer = null;
        pump();
      }, wait);
      return;
    }
    const next = pending;
    pending = null;
    sent = next.progress;
    sentPhase = next.phase;
    sentAt = Date.now();
    const client = opts.client;
    inFlight = client
      .reportProgress(
        opts.jobId,
        {
          progress: next.progress,
          phase: next.phase,
          metrics: next.metrics ? wellFormed(next.metrics) : null,
          worker_id: opts.workerId,
          buffer_job_id: opts.bufferJobId,
        },
        { timeoutMs: opts.timeoutMs },
      )
      .then((res) => {
        if (res.ok) return;
        if (res.statusCode === 409 && res.code === "lease_lost") {
          opts.log.warn({ jobId: opts.jobId, bufferJobId: opts.bufferJobId }, "buffer_job_lease_lost");
          opts.onLeaseLost?.();
          return;
        }
        if (!warned) {
          warned = true;
          opts.log.warn(
            { jobId: opts.jobId, bufferJobId: opts.bufferJobId, statusCode: res.statusCode, body: res.bodyExcerpt, err: res.error },
            "progress_update_failed",
          );
        }
      })
      .finally(() => {
        inFlight = null;
        pump();
      });
  }

  return {
    update(progress, phase, metrics) {
      // Monotonic: a phase that restarts its own 0..1 never drags the job's bar backwards.
      highest = Math.max(highest, Math.min(1, Math.max(0, progress)));
      pending = { progress: Math.round(highest * 1000) / 1000, phase, metrics };
      pump();
    },
    async settle() {
      if (timer) clearTimeout(timer);
      timer = null;
      pending = null;
      if (inFlight) await inFlight;
    },
  };
}
