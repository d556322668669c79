import type { ErrorInfo } from "@fleet/contract";

/**
 * How the fake inference server behaves for one run.
 * - `ok`: makes the real output (ffmpeg loop + mux) over `durationMs`.
 * - `slow`: the same over `slowDurationMs` (or the run's own `duration_ms`).
 * - `fail`: processing_error at stage inference, retryable false.
 * - `oom`: processing_error at stage inference, retryable true, "CUDA out of memory".
 * - `no_face`: media_error at stage preprocessing, retryable false.
 * - `hang`: never finishes; only a cancel (or close) ends it.
 * - `crash_exit_0_without_output`: reports success but writes no output file.
 */
export const FAKE_MODES = ["ok", "slow", "fail", "oom", "no_face", "hang", "crash_exit_0_without_output"] as const;
export type FakeMode = (typeof FAKE_MODES)[number];

export interface FakeBehaviour {
  mode: FakeMode;
  /** How long the run takes before it ends the way its mode says. */
  durationMs: number;
}

export interface FakeDefaults {
  mode: FakeMode;
  durationMs: number;
  slowDurationMs: number;
}

function isMode(v: unknown): v is FakeMode {
  return typeof v === "string" && (FAKE_MODES as readonly string[]).includes(v);
}

/**
 * Per-run override through the request's `params.fake`, so one job in an end-to-end test can
 * misbehave while the others run normally: `"oom"` or `{ "mode": "slow", "duration_ms": 3000 }`.
 * Without it the server's current mode (`setMode`) applies.
 */
export function resolveBehaviour(params: Record<string, unknown> | undefined, defaults: FakeDefaults): FakeBehaviour {
  const raw = params?.fake;
  let mode = defaults.mode;
  let duration: number | undefined;
  if (isMode(raw)) mode = raw;
  if (raw && typeof raw === "object" && !Array.isArray(raw)) {
    const o = raw as Record<string, unknown>;
    if (isMode(o.mode)) mode = o.mode;
    if (typeof o.duration_ms === "number" && o.duration_ms >= 0) duration = o.duration_ms;
  }
  return { mode, durationMs: duration ?? (mode === "slow" ? defaults.slowDurationMs : defaults.durationMs) };
}

export const OOM_MESSAGE =
  "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 11.76 GiB total capacity; 9.87 GiB already allocated; " +
  "1.12 GiB free; 10.10 GiB reserved in total by PyTorch)";

/** The error a failing mode ends with, or null for modes that do not fail. */
export function modeError(mode: FakeMode): ErrorInfo | null {
  switch (mode) {
    case "fail":
      return {
        error_type: "processing_error", stage: "inference", retryable: false,
        message: "inference failed: RuntimeError: fake inference failure (mode=fail)",
        details: { exception: "RuntimeError", fake_mode: mode },
      };
    case "oom":
      return {
        error_type: "processing_error", stage: "inference", retryable: true,
        message: `torch.OutOfMemoryError: ${OOM_MESSAGE}`,
        details: { exception: "torch.OutOfMemoryError", fake_mode: mode },
      };
    case "no_face":
      return {
        error_type: "media_error", stage: "preprocessing", retryable: false,
        message: "No face detected in the avatar video (checked 25 frames)",
        details: { frames_checked: 25, fake_mode: mode },
      };
    default:
      return null;
  }
}

/** Phase names the original script's log lines map to, by progress. */
export function phaseFor(progress: number): string {
  if (progress < 0.1) return "preprocessing";
  if (progress < 0.9) return "inference";
  return "encoding";
}
