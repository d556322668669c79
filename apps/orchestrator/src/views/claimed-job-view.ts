import type { ClaimedJob } from "@fleet/contract";
import type { ClaimedJobRow } from "../queue/claim-next-job.js";
import { toIso } from "./timestamps.js";

/** A claimed row as the claim routes answer it (the main tier's answer leaves out buffer_job_id). */
export function toClaimedJobView(job: ClaimedJobRow): ClaimedJob {
  return {
    buffer_job_id: job.buffer_job_id,
    musetalk_job_id: job.job_id,
    video_url: job.video_url,
    audio_url: job.audio_url,
    aspect_ratio: job.aspect_ratio,
    resolution: job.resolution,
    params: job.params,
    attempt: job.attempt,
    lease_expires_at: toIso(job.lease_expires_at),
    // Only when named: a job without one answers exactly as before.
    ...(job.video_sha256 ? { video_sha256: job.video_sha256 } : {}),
  };
}
