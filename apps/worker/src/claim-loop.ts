import { ClaimedJobReply, type ClaimJobReply, type UnrunnableJobReply } from "@fleet/contract";
import type { Logger } from "./logger.js";
import { credentialRejected, type OrchestratorClient } from "./orchestrator-client.js";
import { backoffDelay, jitter } from "./util/backoff.js";
import type { WakeSignal } from "@fleet/runtime";
import { sleep } from "./util/sleep.js";

export interface ClaimLoopOptions {
  client: OrchestratorClient;
  workerId: string;
  /** Long-poll length; 0 falls back to polling every `idlePollMs`. */
  waitMs: number;
  idlePollMs: number;
  timeoutMs: number;
  log: Logger;
  /** Null when a claim may be made now, else the reason it may not (logged on change). */
  blockedBy: () => string | null;
  /** Must register the job synchronously, so the next `blockedBy()` sees the slot taken. */
  onJob: (job: ClaimedJobReply) => void;
  /** A claimed job that cannot run (malformed URL or field): report it failed, never run it. */
  onUnrunnable: (job: UnrunnableJobReply, problem: string) => void;
  /** Notified whenever something `blockedBy` reads may have changed. */
  changes: WakeSignal;
}

export interface ClaimLoop {
  stop(): Promise<void>;
}

/**
 * One claim loop per GPU, so two loops never race for one slot. It claims only while `blockedBy()` is
 * null — heartbeat accepted, engine ready, storage usable, not draining, a slot free — and
 * long-polls so an idle worker picks a job up as soon as it is queued.
 */
export function startClaimLoop(opts: ClaimLoopOptions): ClaimLoop {
  const { log, workerId } = opts;
  const stopController = new AbortController();
  const stopSignal = stopController.signal;
  let lastBlockedReason: string | null | undefined;
  let failures = 0;
  let lastRefusal: string | null = null;

  function take(job: NonNullable<ClaimJobReply["job"]>) {
    if ("unrunnable" in job) {
      const problem = describeProblem(job);
      log.error({ workerId, bufferJobId: job.buffer_job_id, jobId: job.musetalk_job_id, problem }, "buffer_claim_unrunnable_job");
      opts.onUnrunnable(job, problem);
      return;
    }
    log.info({ workerId, bufferJobId: job.buffer_job_id, jobId: job.musetalk_job_id, attempt: job.attempt }, "buffer_job_claimed");
    opts.onJob(job);
  }

  /** One pass: wait while blocked, or claim once. False when the loop should end. */
  async function iterate(): Promise<boolean> {
    const blocked = opts.blockedBy();
    if (blocked !== lastBlockedReason) {
      log.debug({ workerId, blockedBy: blocked }, blocked ? "buffer_claim_paused" : "buffer_claim_resumed");
      lastBlockedReason = blocked;
    }
    if (blocked) {
      await opts.changes.wait(1_000, stopSignal);
      return true;
    }
    const started = Date.now();
    const result = await opts.client.claimJob(
      { worker_id: workerId, wait_ms: opts.waitMs },
      { signal: stopSignal, timeoutMs: opts.waitMs + opts.timeoutMs },
    );
    if (stopSignal.aborted) {
      // A job claimed in the same instant as the stop is still ours: run it rather than strand it.
      if (result.ok && result.value.job) take(result.value.job);
      return false;
    }
    if (!result.ok) {
      failures += 1;
      const fields = { workerId, statusCode: result.statusCode, body: result.bodyExcerpt, err: result.error };
      if (credentialRejected(result)) {
        log.error({ ...fields, configurationError: true }, "buffer_claim_error");
      } else {
        log.warn(fields, "buffer_claim_error");
      }
      await sleep(backoffDelay(failures, opts.idlePollMs, Math.max(opts.idlePollMs, 30_000)), stopSignal);
      return true;
    }
    failures = 0;
    const { job, reason } = result.value;
    if (!reason || reason === "no_job") lastRefusal = null;
    if (job) {
      take(job);
      return true;
    }
    if (reason && reason !== "no_job") {
      // Said once per reason, not on every poll: a quarantine can last ten minutes.
      if (reason !== lastRefusal) log[reason === "worker_quarantined" ? "warn" : "info"]({ workerId, reason }, "buffer_claim_refused");
      lastRefusal = reason;
      // The orchestrator will not give us work yet; ask again after a beat, or sooner if our state changes.
      await opts.changes.wait(jitter(opts.idlePollMs), stopSignal);
      return true;
    }
    // An empty answer that came back early (no long-poll support, or wait_ms 0) must not spin.
    const elapsed = Date.now() - started;
    if (opts.waitMs === 0 || elapsed < Math.min(opts.waitMs, 1_000) / 2) {
      await sleep(jitter(opts.idlePollMs), stopSignal);
    }
    return true;
  }

  async function run() {
    while (!stopSignal.aborted) {
      try {
        if (!(await iterate())) return;
      } catch (err) {
        // A throw from blockedBy/onJob/a take must not end claiming for the life of the process:
        // log it, back off, and go on (the heartbeat and outbox loops do the same).
        failures += 1;
        log.error({ err, workerId }, "buffer_claim_loop_error");
        await sleep(backoffDelay(failures, opts.idlePollMs, Math.max(opts.idlePollMs, 30_000)), stopSignal);
      }
    }
  }

  const done = run().catch((err: unknown) => {
    log.fatal({ err, workerId }, "buffer_claim_loop_crashed");
    throw err;
  });

  return {
    async stop() {
      stopController.abort();
      await done.catch(() => undefined);
    },
  };
}

function describeProblem(job: UnrunnableJobReply): string {
  const parsed = ClaimedJobReply.safeParse(job);
  if (parsed.success) return "unknown problem";
  return parsed.error.issues
    .map((i) => `${i.path.join(".")}: ${i.message}`)
    .join("; ")
    .slice(0, 500);
}
