import type { ErrorFault, ErrorInfo, ErrorStage, ErrorType } from "@fleet/contract";

/**
 * A failure the retry policy can act on. Thrown by each stage with its own classification and
 * never re-wrapped by a catch-all (which would turn a non-retryable failure into a retryable one).
 */
export class JobError extends Error {
  override readonly name = "JobError";
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }

  /** The input file is unusable or over a limit: the job's fault, never retried. */
  static media(stage: ErrorStage, message: string, details?: Record<string, unknown>): JobError {
    return new JobError({ error_type: "media_error", stage, message, retryable: false, details: details ?? null, fault: "job" });
  }

  /**
   * An input URL could not be fetched. The job's fault whatever the reason (its host answered
   * 4xx/5xx or never answered): retrying it elsewhere may help, blaming this worker never does.
   */
  static download(message: string, retryable: boolean, details?: Record<string, unknown>): JobError {
    return new JobError({ error_type: "download_error", stage: "download", message, retryable, details: details ?? null, fault: "job" });
  }

  /** Something on this box failed (engine, disk, storage): the worker's fault. */
  static processing(stage: ErrorStage, message: string, retryable: boolean, details?: Record<string, unknown>): JobError {
    return new JobError({ error_type: "processing_error", stage, message, retryable, details: details ?? null, fault: "worker" });
  }

  static of(type: ErrorType, stage: ErrorStage, message: string, retryable: boolean, details?: Record<string, unknown>): JobError {
    return new JobError({ error_type: type, stage, message, retryable, details: details ?? null, fault: faultOf(type) });
  }
}

/** Aborts carry why (cancelled by a client, lease lost, released on drain, shutdown). */
export type AbortReason = "cancelled" | "lost" | "released";

export class JobAbortedError extends Error {
  override readonly name = "JobAbortedError";
  constructor(readonly reason: AbortReason) {
    super(`job aborted: ${reason}`);
  }
}

/** Reads the reason an AbortController was aborted with; anything else counts as a release. */
export function abortReasonOf(signal: AbortSignal): AbortReason {
  const r: unknown = signal.reason;
  return r === "cancelled" || r === "lost" || r === "released" ? r : "released";
}

/** Throws JobAbortedError if the job's signal has fired; stages call it between steps. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
}

/** Media and download failures come from the job's inputs; everything else from the worker. */
export function faultOf(type: ErrorType): ErrorFault {
  return type === "media_error" || type === "download_error" ? "job" : "worker";
}

const SYSTEM_RETRYABLE = new Set(["ENOSPC", "EMFILE", "ENFILE", "ENOMEM", "EIO", "EDQUOT"]);

/**
 * Classifies anything a stage threw that is not already a JobError: resource exhaustion on this
 * box is worth trying elsewhere; an unexpected bug is not (it would fail everywhere).
 */
export function toErrorInfo(err: unknown, stage: ErrorStage): ErrorInfo {
  if (err instanceof JobError) return err.info;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === "string" && SYSTEM_RETRYABLE.has(code)) {
    return { error_type: "processing_error", stage, message, retryable: true, details: { code }, fault: "worker" };
  }
  return {
    error_type: "unknown_error",
    stage,
    message,
    retryable: false,
    details: typeof code === "string" ? { code } : null,
    fault: "worker",
  };
}
