import { execFile } from "node:child_process";
import { stat } from "node:fs/promises";
import { JobAbortedError, JobError, abortReasonOf } from "./job-error.js";
import { excerpt } from "../util/excerpt.js";

/** The original's floor: anything smaller is an error page or a truncated file, not media. */
const MIN_BYTES = 1000;

export interface MediaInfo {
  bytes: number;
  formatName: string;
  /** Null for a still image. */
  durationSec: number | null;
  video: { codec: string; width: number; height: number; fps: number | null } | null;
  audio: { codec: string; sampleRate: number | null; channels: number | null } | null;
  /** A single picture (png, jpeg...): the engine loops it as a still frame. */
  isImage: boolean;
}

interface ProbeJson {
  format?: { format_name?: string; duration?: string };
  streams?: Array<{
    codec_type?: string;
    codec_name?: string;
    width?: number;
    height?: number;
    avg_frame_rate?: string;
    r_frame_rate?: string;
    sample_rate?: string;
    channels?: number;
    duration?: string;
  }>;
}

const IMAGE_FORMATS = /(^|,)(image2|png_pipe|jpeg_pipe|webp_pipe|bmp_pipe|gif)(,|$)/;

/** Runs ffprobe without blocking the event loop; its failure is the file's fault (media_error). */
export async function probeMedia(file: string, opts: { ffprobePath: string; timeoutMs: number; signal: AbortSignal; what: string }): Promise<MediaInfo> {
  let bytes: number;
  try {
    bytes = (await stat(file)).size;
  } catch {
    throw JobError.media("validation", `${opts.what} file not found`);
  }
  if (bytes < MIN_BYTES) throw JobError.media("validation", `${opts.what} file too small`, { size: bytes, min_size: MIN_BYTES });

  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      opts.ffprobePath,
      ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file],
      { timeout: opts.timeoutMs, signal: opts.signal, maxBuffer: 8 * 1024 * 1024, killSignal: "SIGKILL" },
      (err, out, stderr) => {
        if (opts.signal.aborted) return reject(new JobAbortedError(abortReasonOf(opts.signal)));
        if (err) {
          const killed = (err as { killed?: boolean }).killed === true;
          if (killed) return reject(JobError.media("validation", `Validation timeout for ${opts.what}`, { timeout_ms: opts.timeoutMs }));
          if ((err as { code?: unknown }).code === "ENOENT") {
            return reject(JobError.processing("validation", "ffprobe is not installed on this worker", true));
          }
          return reject(JobError.media("validation", `Invalid ${opts.what} file: ffprobe failed`, { ffprobe_stderr: excerpt(stderr, 500) }));
        }
        resolve(out);
      },
    );
  });

  let json: ProbeJson;
  try {
    json = JSON.parse(stdout) as ProbeJson;
  } catch {
    throw JobError.media("validation", `Invalid ${opts.what} file: unreadable ffprobe output`);
  }
  const formatName = json.format?.format_name ?? "unknown";
  const streams = json.streams ?? [];
  const v = streams.find((s) => s.codec_type === "video");
  const a = streams.find((s) => s.codec_type === "audio");
  const isImage = IMAGE_FORMATS.test(formatName);
  const rawDuration = Number(json.format?.duration ?? v?.duration ?? a?.duration ?? NaN);
  return {
    bytes,
    formatName,
    durationSec: Number.isFinite(rawDuration) && rawDuration > 0 ? rawDuration : null,
    video: v ? { codec: v.codec_name ?? "unknown", width: v.width ?? 0, height: v.height ?? 0, fps: parseRate(v.avg_frame_rate ?? v.r_frame_rate) } : null,
    audio: a
      ? { codec: a.codec_name ?? "unknown", sampleRate: a.sample_rate ? Number(a.sample_rate) : null, channels: a.channels ?? null }
      : null,
    isImage,
  };
}

function parseRate(rate: string | undefined): number | null {
  if (!rate) return null;
  const [n, d] = rate.split("/").map(Number);
  if (!n || !d) return null;
  return n / d;
}

/**
 * The checks the original never made (§4.3): the avatar must have a picture, the voice must
 * have sound and a length, and neither may exceed the limits.
 */
export async function validateInputs(
  files: { video: string; audio: string },
  opts: { ffprobePath: string; timeoutMs: number; maxDurationSec: number; signal: AbortSignal },
): Promise<{ video: MediaInfo; audio: MediaInfo }> {
  const [video, audio] = await Promise.all([
    probeMedia(files.video, { ...opts, what: "video" }),
    probeMedia(files.audio, { ...opts, what: "audio" }),
  ]);
  if (!video.video || video.video.width <= 0 || video.video.height <= 0) {
    throw JobError.media("validation", "video file has no video stream", { format: video.formatName });
  }
  if (!video.isImage && video.durationSec === null) {
    throw JobError.media("validation", "video file: no duration info", { format: video.formatName });
  }
  if (!audio.audio) throw JobError.media("validation", "audio file has no audio stream", { format: audio.formatName });
  if (audio.durationSec === null) throw JobError.media("validation", "audio file: no duration info", { format: audio.formatName });
  for (const [what, info] of [["video", video], ["audio", audio]] as const) {
    if (info.durationSec !== null && info.durationSec > opts.maxDurationSec) {
      throw JobError.media("validation", `${what} is ${info.durationSec.toFixed(1)} s long, over the ${opts.maxDurationSec} s limit`, {
        duration_sec: info.durationSec,
        max_duration_sec: opts.maxDurationSec,
      });
    }
  }
  return { video, audio };
}
