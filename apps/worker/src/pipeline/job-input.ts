import type { JsonObject } from "@fleet/contract";

/** What a job needs to run, whether it came from a claim or from POST /generate. */
export interface JobInput {
  /** Unique per attempt: names the work dir and the engine's prediction. */
  attemptId: string;
  bufferJobId: string | null;
  jobId: string;
  attempt: number | null;
  videoUrl: string;
  audioUrl: string;
  aspectRatio: string;
  resolution: string;
  params: JsonObject;
  /** sha256 of the video's bytes when the job named it: the engine may already keep that avatar. */
  videoSha256: string | null;
}

/** The fields a claimed job and a POST /generate body share, in the wire's spelling. */
export interface WireJob {
  musetalk_job_id: string;
  video_url: string;
  audio_url: string;
  aspect_ratio: string;
  resolution: string;
  params: JsonObject;
  /** Only claims carry it, and only for jobs created with one. */
  video_sha256?: string | null;
}

/**
 * The one mapping from the wire to a pipeline input. A claim names its attempt by its
 * buffer_job_id (the fencing token); a /generate call has neither and gets an id of its own.
 */
export function toJobInput(job: WireJob, attempt: { attemptId: string; bufferJobId: string | null; attempt: number | null }): JobInput {
  return {
    attemptId: attempt.attemptId,
    bufferJobId: attempt.bufferJobId,
    jobId: job.musetalk_job_id,
    attempt: attempt.attempt,
    videoUrl: job.video_url,
    audioUrl: job.audio_url,
    aspectRatio: job.aspect_ratio,
    resolution: job.resolution,
    params: job.params,
    videoSha256: job.video_sha256 ?? null,
  };
}
