import type { JobView } from "@fleet/contract";
import { formatAge } from "./duration.js";

/** `key: value` lines for `fleet job ID`; only fields that say something. */
export function formatJobDetails(job: JobView, now: Date = new Date()): string {
  const lines: [string, string][] = [
    ["id", job.id],
    ["status", job.cancel_requested && job.status === "running" ? "running (cancel requested)" : job.status],
    ["progress", `${Math.round(job.progress * 100)}%${job.phase === null ? "" : ` (${job.phase})`}`],
    ["worker", job.worker_id ?? "-"],
    ["attempts", `${job.attempts} of ${job.max_attempts}`],
    ["video", job.input.video_url],
    ["audio", job.input.audio_url],
    ["format", `${job.input.aspect_ratio}, ${job.input.resolution}`],
    ["created", `${job.created_at} (${formatAge(job.created_at, now)})`],
  ];
  if (job.started_at !== null) lines.push(["started", job.started_at]);
  if (job.finished_at !== null) lines.push(["finished", job.finished_at]);
  if (job.output_url !== null) lines.push(["output", job.output_url]);
  if (job.error !== null) lines.push(["error", job.error]);
  if (job.error_info != null) {
    const e = job.error_info;
    lines.push(["error type", `${e.error_type} at ${e.stage}${e.retryable ? " (retryable)" : ""}`]);
  }
  if (job.metrics !== null && Object.keys(job.metrics).length > 0) lines.push(["metrics", JSON.stringify(job.metrics)]);
  const width = Math.max(...lines.map(([k]) => k.length)) + 1;
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join("\n") + "\n";
}

/** The one-line cause of a failed job, with its structured type when there is one. */
export function describeJobFailure(job: JobView): string {
  const e = job.error_info;
  const cause = job.error ?? e?.message ?? "no error message";
  return e == null ? cause : `${e.error_type} at ${e.stage}: ${cause}`;
}
