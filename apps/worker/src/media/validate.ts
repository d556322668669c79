import { stat } from "node:fs/promises";
import type { FfmpegBounds, MediaLimits } from "../config.js";
import { excerpt } from "../util/excerpt.js";
import { runProcess } from "../util/run-process.js";
import { JobAbortedError, JobError, abortReasonOf } from "../errors/job-error.js";

/** The original's floor: anything smaller is an error page or a truncated file, not media. */
const MIN_BYTES = 1000;
/** ffprobe's JSON for a sane file is a few KB; a file with thousands of streams is not an avatar. */
const MAX_PROBE_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * Demuxers an input may be read with, by the name ffprobe reports first in `format_name`. Only
 * self-contained containers and single pictures: playlists (hls, dash), concat lists, image
 * sequences (image2) and the like would make ffmpeg open other files of this box.
 */
const ALLOWED_DEMUXERS = new Set([
  "mov", // mov,mp4,m4a,3gp,3g2,mj2
  "matroska", // matroska,webm
  "avi",
  "mpegts",
  "wav",
  "mp3",
  "ogg",
  "flac",
  "aac",
  "png_pipe",
  "jpeg_pipe",
  "webp_pipe",
  "bmp_pipe",
]);
const IMAGE_DEMUXERS = new Set(["png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe"]);

/**
 * Input options of every ffmpeg/ffprobe on a downloaded file: local files only (no http, data:,
 * subfile, pipes), and only the allowed demuxers, so a playlist is refused before ffmpeg opens a
 * single segment.
 */
export const INPUT_GUARD = ["-protocol_whitelist", "file", "-format_whitelist", [...ALLOWED_DEMUXERS].join(",")];

export interface MediaInfo {
  bytes: number;
  formatName: string;
  /** The demuxer ffprobe chose; ffmpeg is told to use exactly it (`-f`), never to guess again. */
  demuxer: string;
  /** Null for a still image. */
  durationSec: number | null;
  video: { codec: string; width: number; height: number; fps: number | null; frames: number | null } | null;
  audio: { codec: string; sampleRate: number | null; channels: number | null } | null;
  /** A single picture (png, jpeg...): the engine loops it as a still frame. */
  isImage: boolean;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  sample_rate?: string;
  channels?: number;
  duration?: string;
}

interface ProbeJson {
  format?: { format_name?: string; duration?: string };
  streams?: ProbeStream[];
}

export interface ProbeOptions {
  /** Resolved by @fleet/media-tools: FFPROBE_PATH, the system's, or the npm-shipped build. */
  ffprobePath: string;
  timeoutMs: number;
  signal: AbortSignal;
  what: string;
  bounds: FfmpegBounds;
}

/**
 * Runs ffprobe, bounded like every ffmpeg child, on a local file only. Its failure is the file's
 * fault (media_error); a container outside ALLOWED_DEMUXERS is refused before anything decodes it.
 */
export async function probeMedia(file: string, opts: ProbeOptions): Promise<MediaInfo> {
  let bytes: number;
  try {
    bytes = (await stat(file)).size;
  } catch {
    throw JobError.media("validation", `${opts.what} file not found`);
  }
  if (bytes < MIN_BYTES) throw JobError.media("validation", `${opts.what} file too small`, { size: bytes, min_size: MIN_BYTES });

  const lines: string[] = [];
  let outputBytes = 0;
  const outcome = await runProcess(
    opts.ffprobePath,
    ["-v", "error", ...INPUT_GUARD, "-threads", String(opts.bounds.threads), "-print_format", "json", "-show_format", "-show_streams", file],
    {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      // ffprobe decodes a few frames to fill in stream facts: a pixel bomb hits the bound here.
      bounds: { memoryBytes: opts.bounds.memoryBytes, cpuSec: Math.min(opts.bounds.cpuSec, Math.ceil(opts.timeoutMs / 1000)) },
      onStdoutLine: (line) => {
        outputBytes += line.length + 1;
        if (outputBytes <= MAX_PROBE_OUTPUT_BYTES) lines.push(line);
      },
    },
  );
  if (outcome.aborted) throw new JobAbortedError(abortReasonOf(opts.signal));
  if (outcome.spawnError) {
    throw JobError.processing("validation", `ffprobe could not run on this worker: ${outcome.spawnError.message}`, true);
  }
  if (outcome.timedOut) throw JobError.media("validation", `Validation timeout for ${opts.what}`, { timeout_ms: opts.timeoutMs });
  if (outcome.hitBound) {
    throw JobError.media("validation", `${opts.what} needs more than the decoding bound to probe`, {
      max_memory_mb: Math.round(opts.bounds.memoryBytes / 1024 / 1024),
      ffprobe_stderr: excerpt(outcome.stderrTail, 500),
    });
  }
  const refusedFormat = /\[(\w+) @ [^\]]*\] Format not on whitelist/.exec(outcome.stderrTail)?.[1];
  if (outcome.code !== 0 && refusedFormat) throw formatNotAllowed(opts.what, refusedFormat);
  if (outcome.code !== 0) {
    throw JobError.media("validation", `Invalid ${opts.what} file: ffprobe failed`, { ffprobe_stderr: excerpt(outcome.stderrTail, 500) });
  }
  if (outputBytes > MAX_PROBE_OUTPUT_BYTES) throw JobError.media("validation", `${opts.what} file has too many streams`);

  let json: ProbeJson;
  try {
    json = JSON.parse(lines.join("\n")) as ProbeJson;
  } catch {
    throw JobError.media("validation", `Invalid ${opts.what} file: unreadable ffprobe output`);
  }
  const formatName = json.format?.format_name ?? "unknown";
  const demuxer = formatName.split(",")[0] ?? "unknown";
  // The whitelist already refused it; checked again so the rule holds whatever ffprobe version runs.
  if (!ALLOWED_DEMUXERS.has(demuxer)) throw formatNotAllowed(opts.what, formatName);
  const streams = json.streams ?? [];
  const v = streams.find((s) => s.codec_type === "video");
  const a = streams.find((s) => s.codec_type === "audio");
  const isImage = IMAGE_DEMUXERS.has(demuxer);
  const durations = [json.format?.duration, ...streams.map((s) => s.duration)].map(Number).filter((d) => Number.isFinite(d) && d > 0);
  const fps = v ? parseRate(v.avg_frame_rate) ?? parseRate(v.r_frame_rate) : null;
  const nbFrames = Number(v?.nb_frames ?? NaN);
  const durationSec = durations.length > 0 ? Math.max(...durations) : null;
  return {
    bytes,
    formatName,
    demuxer,
    durationSec,
    video: v
      ? {
          codec: v.codec_name ?? "unknown",
          width: v.width ?? 0,
          height: v.height ?? 0,
          fps,
          frames: isImage ? 1 : Number.isFinite(nbFrames) && nbFrames > 0 ? nbFrames : durationSec !== null && fps !== null ? Math.ceil(durationSec * fps) : null,
        }
      : null,
    audio: a
      ? { codec: a.codec_name ?? "unknown", sampleRate: a.sample_rate ? Number(a.sample_rate) : null, channels: a.channels ?? null }
      : null,
    isImage,
  };
}

function formatNotAllowed(what: string, format: string): JobError {
  return JobError.media("validation", `${what} format ${format} is not allowed`, { format, allowed: [...ALLOWED_DEMUXERS] });
}

function parseRate(rate: string | undefined): number | null {
  if (!rate) return null;
  const [n, d] = rate.split("/").map(Number);
  if (!n || !d) return null;
  return n / d;
}

/** Throws a media_error naming the first of ffprobe's facts that breaks a limit. */
function checkMediaLimits(what: string, info: MediaInfo, limits: MediaLimits): void {
  const over = (fact: string, value: number, limit: number) =>
    JobError.media("validation", `${what} ${fact} is ${value}, over the limit of ${limit}`, { fact, value, limit, format: info.formatName });
  if (info.durationSec !== null && info.durationSec > limits.maxDurationSec) {
    throw JobError.media("validation", `${what} is ${info.durationSec.toFixed(1)} s long, over the ${limits.maxDurationSec} s limit`, {
      duration_sec: info.durationSec,
      max_duration_sec: limits.maxDurationSec,
    });
  }
  const v = info.video;
  if (!v) return;
  if (v.width > limits.maxSidePx) throw over("width", v.width, limits.maxSidePx);
  if (v.height > limits.maxSidePx) throw over("height", v.height, limits.maxSidePx);
  if (v.width * v.height > limits.maxPixels) throw over("pixel count", v.width * v.height, limits.maxPixels);
  if (v.fps !== null && v.fps > limits.maxFps) throw over("frame rate", Math.round(v.fps * 100) / 100, limits.maxFps);
  if (v.frames !== null && v.frames > limits.maxFrames) throw over("frame count", v.frames, limits.maxFrames);
}

/**
 * Fails a bad input before it costs GPU time: each input is an allowed container, the avatar has a
 * picture, the voice has sound and a length, and neither breaks a limit — all from ffprobe's
 * facts, before the engine decodes a frame.
 */
export async function validateInputs(
  files: { video: string | null; audio: string },
  opts: { ffprobePath: string; timeoutMs: number; limits: MediaLimits; bounds: FfmpegBounds; signal: AbortSignal },
): Promise<{ video: MediaInfo | null; audio: MediaInfo }> {
  const probe = { ffprobePath: opts.ffprobePath, timeoutMs: opts.timeoutMs, bounds: opts.bounds, signal: opts.signal };
  // No video file: the engine keeps this avatar prepared, and checked the video when it prepared it.
  const [video, audio] = await Promise.all([
    files.video === null ? null : probeMedia(files.video, { ...probe, what: "video" }),
    probeMedia(files.audio, { ...probe, what: "audio" }),
  ]);
  if (video) {
    if (!video.video || video.video.width <= 0 || video.video.height <= 0) {
      throw JobError.media("validation", "video file has no video stream", { format: video.formatName });
    }
    if (!video.isImage && video.durationSec === null) {
      throw JobError.media("validation", "video file: no duration info", { format: video.formatName });
    }
  }
  if (!audio.audio) throw JobError.media("validation", "audio file has no audio stream", { format: audio.formatName });
  if (audio.durationSec === null) throw JobError.media("validation", "audio file: no duration info", { format: audio.formatName });
  if (video) checkMediaLimits("video", video, opts.limits);
  checkMediaLimits("audio", audio, opts.limits);
  return { video, audio };
}
