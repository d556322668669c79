import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { resolveMediaTools, type MediaTools } from "@fleet/media-tools";

/**
 * Tiny real media files for tests, made with the same ffmpeg/ffprobe the worker would pick
 * (FFMPEG_PATH/FFPROBE_PATH, else the system's, else the npm-shipped builds). Small on purpose:
 * a few seconds of 160x120 H.264 encode in well under a second on a shared 2-core box.
 */

let resolved: MediaTools | undefined;

/** The ffmpeg/ffprobe the tests use, resolved once per process. */
export function testMediaTools(): MediaTools {
  resolved ??= resolveMediaTools(process.env);
  return resolved;
}

export interface TestVideoOptions {
  seconds?: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Adds a sine audio track, like a recorded avatar clip with sound. Default false. */
  withAudio?: boolean;
}

export interface TestAudioOptions {
  seconds?: number;
  /** Sine frequency in Hz. */
  frequency?: number;
  sampleRate?: number;
}

export interface MediaProbe {
  durationSec: number | null;
  hasVideo: boolean;
  hasAudio: boolean;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and keeps the last 64 KiB of each stream (ffmpeg is chatty). */
export function runProcess(cmd: string, args: readonly string[], signal?: AbortSignal): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], signal });
    let stdout = "";
    let stderr = "";
    const keep = (acc: string, chunk: Buffer): string => (acc + chunk.toString("utf8")).slice(-65_536);
    child.stdout.on("data", (c: Buffer) => (stdout = keep(stdout, c)));
    child.stderr.on("data", (c: Buffer) => (stderr = keep(stderr, c)));
    child.on("error", reject);
    child.on("close", (code, sig) => resolve({ code, signal: sig, stdout, stderr }));
  });
}

async function runFfmpeg(args: readonly string[]): Promise<void> {
  const res = await runProcess(testMediaTools().ffmpeg.path, ["-hide_banner", "-loglevel", "error", "-y", ...args]);
  if (res.code !== 0) throw new Error(`ffmpeg exited with ${res.code ?? res.signal}: ${res.stderr.slice(-500)}`);
}

export async function makeTestVideo(path: string, opts: TestVideoOptions = {}): Promise<string> {
  const { seconds = 2, width = 160, height = 120, fps = 15, withAudio = false } = opts;
  const video = `testsrc=duration=${seconds}:size=${width}x${height}:rate=${fps}`;
  const audioIn = withAudio ? ["-f", "lavfi", "-i", `sine=frequency=330:duration=${seconds}`] : [];
  const audioOut = withAudio ? ["-c:a", "aac", "-b:a", "64k"] : [];
  await runFfmpeg([
    "-f", "lavfi", "-i", video,
    ...audioIn,
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
    ...audioOut,
    "-movflags", "+faststart",
    path,
  ]);
  return path;
}

export async function makeTestAudio(path: string, opts: TestAudioOptions = {}): Promise<string> {
  const { seconds = 2, frequency = 440, sampleRate = 16_000 } = opts;
  await runFfmpeg([
    "-f", "lavfi", "-i", `sine=frequency=${frequency}:duration=${seconds}:sample_rate=${sampleRate}`,
    "-ac", "1",
    path,
  ]);
  return path;
}

/** Random bytes no demuxer recognises; ≥ 1000 bytes so it passes the original size check and fails at ffprobe. */
export async function makeCorruptFile(path: string, bytes = 4096): Promise<string> {
  const body = randomBytes(Math.max(1000, bytes));
  // A leading text marker keeps random bytes from ever looking like a real container header.
  body.write("FLEET-CORRUPT-TEST-FILE", 0, "latin1");
  await writeFile(path, body);
  return path;
}

interface FfprobeJson {
  format?: { duration?: string };
  streams?: { codec_type?: string; codec_name?: string; width?: number; height?: number; duration?: string }[];
}

export async function probeMedia(path: string): Promise<MediaProbe> {
  const res = await runProcess(testMediaTools().ffprobe.path, [
    "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path,
  ]);
  if (res.code !== 0) throw new Error(`ffprobe failed for ${path}: ${res.stderr.slice(-500)}`);
  const json = JSON.parse(res.stdout) as FfprobeJson;
  const streams = json.streams ?? [];
  const video = streams.find((s) => s.codec_type === "video");
  const audio = streams.find((s) => s.codec_type === "audio");
  const duration = Number(json.format?.duration ?? video?.duration ?? audio?.duration);
  return {
    durationSec: Number.isFinite(duration) ? duration : null,
    hasVideo: video !== undefined,
    hasAudio: audio !== undefined,
    width: video?.width ?? null,
    height: video?.height ?? null,
    videoCodec: video?.codec_name ?? null,
    audioCodec: audio?.codec_name ?? null,
  };
}

/**
 * Loops `videoPath` to the audio's length and muxes the audio in: the CPU stand-in for lip-sync,
 * so whatever consumes the result sees a real video with the voice's duration.
 */
export async function loopVideoToAudio(videoPath: string, audioPath: string, outputPath: string, signal?: AbortSignal): Promise<void> {
  const audio = await probeMedia(audioPath);
  if (!audio.hasAudio || !audio.durationSec) throw new Error(`no audio stream with a duration in ${audioPath}`);
  const res = await runProcess(testMediaTools().ffmpeg.path, [
    "-hide_banner", "-loglevel", "error", "-y",
    "-stream_loop", "-1", "-i", videoPath,
    "-i", audioPath,
    "-map", "0:v:0", "-map", "1:a:0",
    "-t", audio.durationSec.toFixed(3),
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "64k",
    "-movflags", "+faststart",
    "-f", "mp4",
    outputPath,
  ], signal);
  if (res.code !== 0) throw new Error(`ffmpeg exited with ${res.code ?? res.signal}: ${res.stderr.slice(-500)}`);
}
