import type { ErrorInfo, JobStatus, JobView } from "@fleet/contract";
import { toIso, toIsoOrNull } from "./timestamps.js";

/** A `jobs` row as raw SQL returns it (snake_case, `select *`). */
export interface JobRow {
  id: string;
  status: JobStatus;
  video_url: string;
  audio_url: string;
  aspect_ratio: string;
  resolution: string;
  params: Record<string, unknown>;
  webhook_url: string | null;
  metadata: Record<string, unknown> | null;
  priority: number;
  progress: number;
  phase: string | null;
  attempts: number;
  failures: number;
  interruptions: number;
  max_attempts: number;
  run_after: string;
  buffer_job_id: string | null;
  worker_id: string | null;
  last_worker_id: string | null;
  cancel_requested: boolean;
  output_url: string | null;
  metrics: Record<string, unknown> | null;
  error: string | null;
  error_info: ErrorInfo | null;
  /** Null only for jobs created before clients existed. */
  client_id: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  /** Null when the job named no hash (and for every job created before migration 0004). */
  video_sha256: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export function toJobView(row: JobRow): JobView {
  return {
    id: row.id,
    status: row.status,
    progress: Number(row.progress),
    phase: row.phase,
    output_url: row.output_url,
    metrics: row.metrics,
    error: row.error,
    error_info: row.error_info,
    input: {
      video_url: row.video_url,
      audio_url: row.audio_url,
      aspect_ratio: row.aspect_ratio,
      resolution: row.resolution,
      params: row.params,
      video_sha256: row.video_sha256 ?? null,
    },
    metadata: row.metadata,
    webhook_url: row.webhook_url,
    priority: row.priority,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    worker_id: row.worker_id,
    cancel_requested: row.cancel_requested,
    created_at: toIso(row.created_at),
    started_at: toIsoOrNull(row.started_at),
    finished_at: toIsoOrNull(row.finished_at),
  };
}
