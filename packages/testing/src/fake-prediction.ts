import { access, mkdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import type { ErrorInfo, Prediction, PredictionInput, PredictionStatus } from "@fleet/contract";
import type { FakeBehaviour } from "./fake-inference-modes.js";
import { modeError, phaseFor } from "./fake-inference-modes.js";
import { sleep } from "./http-util.js";
import { loopVideoToAudio } from "./media.js";

/**
 * One prediction of the fake inference server: a real ffmpeg run (for the modes that make an
 * output) plus a clock that moves progress forward in ticks, ending as its mode says.
 */
export class FakePrediction {
  status: PredictionStatus = "starting";
  progress = 0;
  phase: string | null = "starting";
  error: ErrorInfo | null = null;
  output: { video_path: string } | null = null;
  metrics: Record<string, unknown> | null = null;
  readonly createdAt = Date.now();
  finishedAt: number | null = null;
  /** Settles when the run has stopped and cleaned up, whatever the outcome. */
  readonly done: Promise<void>;
  private readonly abort = new AbortController();
  private startedAt = 0;
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly input: PredictionInput,
    readonly behaviour: FakeBehaviour,
    private readonly tickMs: number,
    /** Maps a path as the container sees it to where the file is on this machine. */
    private readonly hostPath: (containerPath: string) => string = (p) => p,
  ) {
    this.done = this.run()
      .catch((err: unknown) =>
        this.fail({
          error_type: "unknown_error", stage: "unknown", retryable: false,
          message: err instanceof Error ? err.message : String(err), details: null,
        }),
      )
      .finally(() => clearTimeout(this.tickTimer));
  }

  get terminal(): boolean {
    return this.status === "succeeded" || this.status === "failed" || this.status === "canceled";
  }

  view(): Prediction {
    return {
      id: this.id, status: this.status, progress: this.progress, phase: this.phase,
      output: this.output, error: this.error, metrics: this.metrics,
    };
  }

  /** Stops the run at once (kills ffmpeg); the prediction reads `canceled` from now on. */
  cancel(): void {
    if (this.terminal) return;
    this.finish("canceled", "canceled");
    this.abort.abort();
  }

  private finish(status: PredictionStatus, phase: string): void {
    if (this.terminal) return;
    this.status = status;
    this.phase = phase;
    this.finishedAt = Date.now();
    clearTimeout(this.tickTimer);
  }

  private fail(error: ErrorInfo): void {
    this.error = error;
    this.finish("failed", "failed");
  }

  /** Progress follows the clock but stays below 1 until the output exists (a hang stalls at 0.5). */
  private tick(): void {
    if (this.terminal) return;
    const cap = this.behaviour.mode === "hang" ? 0.5 : 0.95;
    const elapsed = Date.now() - this.startedAt;
    const byClock = this.behaviour.durationMs <= 0 ? cap : (elapsed / this.behaviour.durationMs) * cap;
    this.progress = Math.max(this.progress, Math.min(cap, Math.round(byClock * 1000) / 1000));
    this.phase = phaseFor(this.progress);
    this.tickTimer = setTimeout(() => this.tick(), this.tickMs);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    await sleep(0);
    if (this.terminal) return;
    this.status = "processing";
    this.startedAt = Date.now();
    this.tick();
    // Like the real server without an avatar cache: a video named by hash alone is not there.
    if (this.input.video_path === undefined) {
      return this.fail({
        error_type: "processing_error", stage: "preprocessing", retryable: true,
        message: "this engine keeps no prepared avatars: send the video",
        details: { cause: "avatar_not_prepared", video_sha256: this.input.video_sha256 ?? null },
      });
    }
    const video = this.hostPath(this.input.video_path);
    const audio = this.hostPath(this.input.audio_path);
    const output = this.hostPath(this.input.output_path);
    try {
      await Promise.all([access(video), access(audio)]);
    } catch (err) {
      return this.fail({
        error_type: "processing_error", stage: "preprocessing", retryable: true,
        message: `input file not found on the shared volume: ${(err as Error).message}`,
        details: { video_path: video, audio_path: audio },
      });
    }
    const { mode, durationMs } = this.behaviour;
    if (mode === "no_face") {
      await sleep(durationMs / 5, signal);
      if (!this.terminal) this.fail(modeError(mode) as ErrorInfo);
      return;
    }
    const partial = `${output}.partial-${this.id}.mp4`;
    const makesOutput = mode === "ok" || mode === "slow";
    let render: Promise<Error | null> = Promise.resolve(null);
    if (makesOutput) {
      await mkdir(dirname(output), { recursive: true });
      // Settled into a value so a failure while the clock runs is never an unhandled rejection.
      render = loopVideoToAudio(video, audio, partial, signal).then(
        () => null,
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      );
    }
    await sleep(durationMs, signal);
    if (mode === "hang") await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve())));
    const renderError = await render;
    if (this.terminal) {
      await rm(partial, { force: true });
      return;
    }
    const error = modeError(mode);
    if (error) return this.fail(error);
    if (mode === "crash_exit_0_without_output") {
      await rm(output, { force: true });
    } else if (renderError) {
      await rm(partial, { force: true });
      return this.fail({
        error_type: "media_error", stage: "preprocessing", retryable: false,
        message: `could not process the inputs: ${renderError.message}`.slice(0, 2000),
        details: { fake_mode: mode },
      });
    } else {
      await rename(partial, output);
    }
    this.progress = 1;
    this.output = { video_path: this.input.output_path };
    this.metrics = {
      inference_time_sec: (Date.now() - this.startedAt) / 1000,
      engine: "fake-inference",
      lip_sync: false,
      fake_mode: mode,
    };
    this.finish("succeeded", "completed");
  }
}
