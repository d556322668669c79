import type { ClaimLoop } from "./claim-loop.js";
import type { HeartbeatLoop } from "./heartbeat-loop.js";
import type { JobRunner } from "./job-runner.js";
import type { Logger } from "./logger.js";
import type { Outbox } from "./outbox.js";
import type { WakeSignal } from "@fleet/runtime";
import type { WorkerFlags } from "./worker-state.js";

export interface Shutdown {
  /** Runs the drain once; later calls get the same promise. */
  drain(): Promise<void>;
  /** Second SIGTERM: abort running jobs now (reported `released`) and finish the drain quickly. */
  abortNow(): void;
}

/**
 * SIGTERM's order: stop claiming, tell the orchestrator `draining`, let running jobs finish within
 * the grace (then release them), flush their reports, send a last beat, then close every part in
 * the order given (`closeInOrder`: what still reports before what it reports through).
 */
export function createShutdown(parts: {
  workerId: string;
  graceMs: number;
  log: Logger;
  flags: WorkerFlags;
  changes: WakeSignal;
  runner: JobRunner;
  claimLoop: ClaimLoop | null;
  heartbeat: HeartbeatLoop | null;
  outbox: Outbox | null;
  closeInOrder: Array<() => Promise<void> | void>;
}): Shutdown {
  const { log, flags, runner, heartbeat, outbox, workerId } = parts;
  let drainPromise: Promise<void> | null = null;

  async function drain() {
    flags.draining = true;
    parts.changes.notify();
    log.info({ workerId, running: runner.running(), graceSec: parts.graceMs / 1000 }, "buffer_worker_draining");
    await parts.claimLoop?.stop();
    if (heartbeat) await heartbeat.beatNow();
    const finished = await runner.whenIdle(flags.forced ? 0 : parts.graceMs);
    if (!finished) {
      log.warn({ workerId, running: runner.running() }, "buffer_worker_drain_timeout");
      runner.abortAll("released");
      await runner.whenIdle(30_000);
    }
    if (outbox) {
      const flushed = await outbox.flush(flags.forced ? 2_000 : 15_000);
      if (!flushed) log.warn({ pending: outbox.pendingIds() }, "outbox_not_flushed_kept_for_restart");
    }
    if (heartbeat) {
      await heartbeat.beatNow();
      await heartbeat.stop();
    }
    for (const close of parts.closeInOrder) await close();
    log.info({ workerId }, "buffer_worker_stopped");
  }

  return {
    drain() {
      drainPromise ??= drain();
      return drainPromise;
    },
    abortNow() {
      flags.forced = true;
      log.warn({ workerId, running: runner.running() }, "buffer_worker_abort_requested");
      runner.abortAll("released");
      parts.changes.notify();
    },
  };
}
