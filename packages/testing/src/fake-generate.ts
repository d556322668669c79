import { createWriteStream } from "node:fs";
import { mkdtemp, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { ErrorStage, GenerateFailure, GenerateRequest, GenerateSuccess } from "@fleet/contract";
import type { FakeDefaults } from "./fake-inference-modes.js";
import { modeError, resolveBehaviour } from "./fake-inference-modes.js";
import { sleep } from "./http-util.js";
import { loopVideoToAudio, probeMedia } from "./media.js";

export interface GenerateContext {
  outputDir: string;
  /** Base of the returned output_url; the file name is appended. */
  outputBaseUrl: string;
  gpuClass: string;
  defaults: FakeDefaults;
}

export type GenerateOutcome =
  | { status: 200; body: GenerateSuccess }
  | { status: 422 | 500; body: GenerateFailure }
  /** The client went away (or the server closed) before an answer. */
  | { status: null };

class StageError extends Error {
  constructor(
    readonly httpStatus: 422 | 500,
    readonly body: Omit<GenerateFailure, "status" | "stage_times">,
  ) {
    super(body.error_message);
  }
}

async function download(url: string, dest: string, signal: AbortSignal): Promise<void> {
  let status: number | null = null;
  try {
    const res = await fetch(url, { signal, redirect: "follow" });
    status = res.status;
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(dest));
  } catch (err) {
    throw new StageError(422, {
      error_type: "media_error", stage: "download", retryable: false,
      error_message: `failed to download after retries (url=${url}, status=${status ?? "None"})`,
      details: { url, status_code: status, reason: err instanceof Error ? err.message : String(err) },
    });
  }
}

async function validate(path: string, kind: "video" | "audio"): Promise<void> {
  const size = (await stat(path)).size;
  if (size < 1000) {
    throw new StageError(422, {
      error_type: "media_error", stage: "validation", retryable: false,
      error_message: `${kind} file too small`, details: { size, min_size: 1000 },
    });
  }
  try {
    const probe = await probeMedia(path);
    if (!probe.durationSec) throw new Error("no duration info");
  } catch (err) {
    throw new StageError(422, {
      error_type: "media_error", stage: "validation", retryable: false,
      error_message: `Invalid ${kind} file: ffprobe failed`,
      details: { ffprobe_stderr: (err instanceof Error ? err.message : String(err)).slice(0, 500) },
    });
  }
}

function failureFromMode(mode: Parameters<typeof modeError>[0]): StageError | null {
  const info = modeError(mode);
  if (!info) return null;
  return new StageError(info.error_type === "media_error" ? 422 : 500, {
    error_type: info.error_type, stage: info.stage, retryable: info.retryable,
    error_message: info.message, details: info.details ?? {},
    stack_trace: info.error_type === "media_error" ? null : `Traceback (most recent call last):\n  File "fake_inference.py", line 1\n${info.message}`,
  });
}

/**
 * The original image's POST /generate: download both URLs, validate with ffprobe, "infer"
 * (ffmpeg loop + mux), store the output, answer in the original's shapes and metrics format.
 */
export async function runGenerate(ctx: GenerateContext, req: GenerateRequest, signal: AbortSignal): Promise<GenerateOutcome> {
  const behaviour = resolveBehaviour(req.params, ctx.defaults);
  const t0 = Date.now();
  const stageTimes: Record<string, number> = {};
  let stage: ErrorStage = "download";
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      stageTimes[name] = (Date.now() - s) / 1000;
    }
  };
  const work = await mkdtemp(join(ctx.outputDir, ".work-"));
  const fileName = `${req.musetalk_job_id.replace(/[^A-Za-z0-9._-]/g, "_")}.mp4`;
  try {
    const video = join(work, "input.mp4");
    const audio = join(work, "input.wav");
    await timed("download", async () => {
      await download(req.video_url, video, signal);
      await download(req.audio_url, audio, signal);
    });
    stage = "validation";
    await timed("validation", async () => {
      await validate(video, "video");
      await validate(audio, "audio");
    });
    stage = "inference";
    const genStart = Date.now();
    await timed("inference", async () => {
      const modeFailure = failureFromMode(behaviour.mode);
      if (behaviour.mode === "no_face") {
        await sleep(behaviour.durationMs / 5, signal);
        if (signal.aborted) throw signal.reason;
        throw modeFailure ?? new Error("no_face without an error");
      }
      const rendered = join(work, "output.mp4");
      const render = behaviour.mode === "ok" || behaviour.mode === "slow" ? loopVideoToAudio(video, audio, rendered, signal) : Promise.resolve();
      await Promise.all([render, sleep(behaviour.durationMs, signal)]);
      if (behaviour.mode === "hang") await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      if (signal.aborted) throw signal.reason;
      if (modeFailure) throw modeFailure;
      if (behaviour.mode !== "crash_exit_0_without_output") await rename(rendered, join(ctx.outputDir, fileName));
    });
    const generation = (Date.now() - genStart) / 1000;
    stageTimes.upload = 0;
    const total = (Date.now() - t0) / 1000;
    return {
      status: 200,
      body: {
        status: "success",
        output_url: `${ctx.outputBaseUrl.replace(/\/$/, "")}/${encodeURIComponent(fileName)}`,
        musetalk_job_id: req.musetalk_job_id,
        metrics: {
          GENERATION_TIME_SEC: generation,
          SCRIPT_WALL_TIME_SEC: generation,
          PEAK_VRAM_MIB: null,
          PEAK_RAM_KB: null,
          gpu_class: ctx.gpuClass,
          stage_times: stageTimes,
          total_time: total,
        },
        error: null,
      },
    };
  } catch (err) {
    if (signal.aborted) return { status: null };
    const message = err instanceof Error ? err.message : String(err);
    const stack = err instanceof Error ? (err.stack ?? null) : null;
    const e =
      err instanceof StageError
        ? err
        : stage === "inference"
          ? new StageError(500, { error_type: "processing_error", stage, retryable: false, error_message: message, details: {}, stack_trace: stack })
          : new StageError(500, { error_type: "unknown_error", stage: "unknown", retryable: false, error_message: message, details: {}, stack_trace: stack });
    return { status: e.httpStatus, body: { status: "failed", ...e.body, stage_times: stageTimes } };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
