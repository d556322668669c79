import type { HeartbeatReply, WorkerReportedStatus } from "@fleet/contract";
import type { Readiness } from "./engine-monitor.js";
import type { AbortReason } from "./errors/job-error.js";

/** The worker's own switches: set by signals and heartbeat replies, read by every rule below. */
export interface WorkerFlags {
  /** SIGTERM: this process is stopping. */
  draining: boolean;
  /** The orchestrator's reply said drain (an operator's `fleet drain`); it may say undrain. */
  drainRequested: boolean;
  /** Second SIGTERM: running jobs were aborted, the drain waits for nothing. */
  forced: boolean;
}

export function initialFlags(): WorkerFlags {
  return { draining: false, drainRequested: false, forced: false };
}

/** Everything the rules read, taken at one moment so one decision sees one state. */
export interface WorkerSnapshot {
  draining: boolean;
  drainRequested: boolean;
  running: number;
  freeSlots: number;
  readiness: Readiness;
  /** The engine monitor's verdict for `running` jobs. */
  readyToClaim: boolean;
  /** The last heartbeat was accepted. */
  heartbeatHealthy: boolean;
  /** A reply proved the orchestrator is Fleet (it knows more statuses than idle and busy). */
  fleetProtocol: boolean;
}

export interface ReportedStatus {
  status: WorkerReportedStatus;
  error: string | null;
}

/** What the worker says it is: draining wins, then busy; an idle worker with a broken part is `error`. */
export function reportedStatus(s: WorkerSnapshot): ReportedStatus {
  if (s.draining || s.drainRequested) return { status: "draining", error: null };
  if (s.running > 0) return { status: "busy", error: null };
  const { engine, storage } = s.readiness;
  if (engine.state === "error" || engine.state === "unavailable") return { status: "error", error: `inference engine ${engine.state}: ${engine.detail ?? ""}`.trim() };
  // Before the first storage check answers the worker is not ready, but nothing is broken yet.
  if (storage.state === "failed") return { status: "error", error: `storage not ready: ${storage.detail}` };
  return { status: "idle", error: null };
}

/**
 * The status word the heartbeat carries. The original orchestrator knows only idle and busy; the
 * reason rides in `error`. Until a reply proves the orchestrator is Fleet, speak the original's
 * words: a first beat it refuses would leave the protocol unlearned and the worker locked out.
 */
export function heartbeatStatus(s: WorkerSnapshot, reported: ReportedStatus): WorkerReportedStatus {
  if (s.fleetProtocol || reported.status === "idle" || reported.status === "busy") return reported.status;
  return s.running > 0 ? "busy" : "idle";
}

/** Why no claim may be made now (a stable word for logs and tests), or null when one may. */
export function claimBlockedBy(s: WorkerSnapshot): string | null {
  if (s.draining) return "draining";
  if (s.drainRequested) return "drain_requested";
  if (!s.heartbeatHealthy) return "heartbeat_not_accepted";
  if (!s.readyToClaim) return s.readiness.storage.state === "ready" ? `engine_${s.readiness.engine.state}` : "storage_not_ready";
  if (s.freeSlots === 0) return "at_capacity";
  return null;
}

/**
 * Why POST /generate is refused now, or null when it may run. Only this process's own SIGTERM
 * refuses it: an orchestrator's drain request is about claims, not about the original's port.
 */
export function generateRefusal(s: WorkerSnapshot): "draining" | "full" | null {
  if (s.draining) return "draining";
  if (s.freeSlots === 0) return "full";
  return null;
}

export interface ReplyPlan {
  /** Jobs to abort, with the reason their report will carry. */
  aborts: Array<{ bufferJobId: string; reason: Extract<AbortReason, "cancelled" | "lost"> }>;
  /** The new drain request, when the reply changed it. */
  drainRequested: boolean | null;
}

/** A heartbeat reply's orders: cancel and lost jobs are aborted; a changed drain flag is applied. */
export function planReply(reply: HeartbeatReply, drainRequested: boolean): ReplyPlan {
  return {
    aborts: [
      ...reply.cancel.map((bufferJobId) => ({ bufferJobId, reason: "cancelled" as const })),
      ...reply.lost.map((bufferJobId) => ({ bufferJobId, reason: "lost" as const })),
    ],
    drainRequested: reply.drain !== drainRequested ? reply.drain : null,
  };
}
