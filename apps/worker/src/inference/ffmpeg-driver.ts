import type { EngineHealth } from "@fleet/contract";
import { stat } from "node:fs/promises";
import type { Logger } from "../logger.js";
import type { FfmpegBounds } from "../config.js";
import { JobAbortedError, JobError, abortReasonOf } from "../errors/job-error.js";
import { INPUT_GUARD } from "../media/validate.js";
import { excerpt } from "../util/excerpt.js";
import { runProcess } from "../util/run-process.js";
import type { FileInferenceDriver, FileInferenceTask } from "./inference-driver.js";

const NO_LIP_SYNC =
  "CPU development engine (ffmpeg): loops the avatar video to the voice's length and muxes the voice; NO lip movement";

/** Frame rate for a still-image avatar, MuseTalk's default `--fps`. */
const IMAGE_FPS = 25;

/**
 * The development engine: makes a playable H.264 + AAC mp4 of the voice's length from the avatar
 * video, with no GPU and no lip sync. Every health report, log line and metric says so, so
 * nobody mistakes its output for MuseTalk's.
 */
export function createFfmpegDriver(opts: { timeoutMs: number; log: Logger; bounds: FfmpegBounds; ffmpegPath?: string }): FileInferenceDriver {
  const ffmpeg = opts.ffmpegPath ?? "ffmpeg";
  let checked: EngineHealth | null = null;

  return {
    name: "ffmpeg",
    input: "files",
    async health({ signal }) {
      if (checked?.state === "ready") return checked;
      const encoders: string[] = [];
      const outcome = await runProcess(ffmpeg, ["-hide_banner", "-encoders"], {
        signal,
        timeoutMs: 10_000,
        onStdoutLine: (line) => encoders.push(line),
      });
      if (outcome.spawnError || outcome.code !== 0) {
        checked = { driver: "ffmpeg", state: "error", detail: `ffmpeg not usable: ${outcome.spawnError?.message ?? excerpt(outcome.stderrTail, 200)}`, lip_sync: false };
        return checked;
      }
      const text = encoders.join("\n");
      const missing = ["libx264", "aac"].filter((e) => !new RegExp(`\\s${e}\\s`).test(text));
      checked =
        missing.length > 0
          ? { driver: "ffmpeg", state: "error", detail: `ffmpeg lacks encoders: ${missing.join(", ")}`, lip_sync: false }
          : { driver: "ffmpeg", state: "ready", detail: NO_LIP_SYNC, lip_sync: false };
      return checked;
    },

    // No avatar cache: every job brings its video.
    avatar() {
      return Promise.resolve("send_it" as const);
    },

    async infer(task: FileInferenceTask) {
      const audioSec = task.audio.durationSec;
      if (audioSec === null) throw JobError.media("validation", "audio has no duration");
      if (task.videoPath === null || task.video === null) {
        throw JobError.processing("preprocessing", "the ffmpeg engine keeps no prepared avatars: it needs the video file", false);
      }
      opts.log.info({ jobId: task.jobId, lipSync: false, audioSec }, "ffmpeg_engine_no_lip_sync");
      const started = Date.now();
      const threads = String(opts.bounds.threads);
      // Each input is read with the demuxer ffprobe saw and allowed, from a local file only:
      // ffmpeg never gets to guess a playlist or a concat list out of the bytes again.
      const video = ["-threads", threads, ...INPUT_GUARD, "-f", task.video.demuxer, ...(task.video.isImage
        ? ["-loop", "1", "-framerate", String(IMAGE_FPS)]
        : ["-stream_loop", "-1"]), "-i", task.videoPath];
      const audio = ["-threads", threads, ...INPUT_GUARD, "-f", task.audio.demuxer, "-i", task.audioPath];
      const args = [
        "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
        "-filter_threads", threads,
        ...video,
        ...audio,
        "-map", "0:v:0", "-map", "1:a:0",
        "-t", audioSec.toFixed(3),
        // libx264 with yuv420p needs even dimensions; odd-sized phone videos exist.
        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-threads", threads,
        "-c:a", "aac", "-b:a", "128k",
        "-shortest", "-movflags", "+faststart",
        task.outputPath,
      ];
      const outcome = await runProcess(ffmpeg, args, {
        signal: task.signal,
        timeoutMs: opts.timeoutMs,
        bounds: opts.bounds,
        onStdoutLine: (line) => {
          const m = /^out_time_(?:us|ms)=(\d+)$/.exec(line);
          if (m?.[1]) task.onProgress(Math.min(1, Number(m[1]) / 1e6 / audioSec), "encoding");
        },
      });
      if (outcome.aborted) throw new JobAbortedError(abortReasonOf(task.signal));
      if (outcome.timedOut) {
        throw JobError.processing("inference", `Inference timed out after ${Math.round(opts.timeoutMs / 1000)} s`, true, { timeout_ms: opts.timeoutMs });
      }
      if (outcome.spawnError) throw JobError.processing("inference", `could not start ffmpeg: ${outcome.spawnError.message}`, true);
      if (outcome.hitBound) {
        // The inputs passed every ffprobe limit yet decoding them needs more than the bound: they
        // lied about themselves. Retrying elsewhere would only hit the same bound.
        throw JobError.media("inference", "decoding the inputs exceeded the worker's memory or CPU bound", {
          max_memory_mb: Math.round(opts.bounds.memoryBytes / 1024 / 1024),
          max_cpu_sec: opts.bounds.cpuSec,
          signal: outcome.signal,
          stderr_tail: excerpt(outcome.stderrTail, 1000),
        });
      }
      if (outcome.code !== 0) {
        const oom = /Cannot allocate memory|out of memory/i.test(outcome.stderrTail);
        throw JobError.processing("inference", `Inference failed with code ${outcome.code ?? outcome.signal}`, oom, {
          return_code: outcome.code,
          stderr_tail: excerpt(outcome.stderrTail, 2000),
          is_oom: oom,
        });
      }
      const size = await stat(task.outputPath).then((s) => s.size).catch(() => 0);
      if (size === 0) throw JobError.processing("postprocessing", "Output video not found after inference success", false);
      const seconds = (Date.now() - started) / 1000;
      return {
        metrics: {
          engine: "ffmpeg",
          lip_sync: false,
          note: NO_LIP_SYNC,
          GENERATION_TIME_SEC: seconds,
          SCRIPT_WALL_TIME_SEC: seconds,
          PEAK_VRAM_MIB: null,
        },
      };
    },
    // Each job's ffmpeg is its own child process, ended with the job: nothing is held open.
    close: () => Promise.resolve(),
  };
}
