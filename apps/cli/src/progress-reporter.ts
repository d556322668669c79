import type { JobView } from "@fleet/contract";
import type { CliIo } from "./cli-io.js";
import { formatDuration } from "./format/duration.js";

export interface ProgressReporter {
  update(job: JobView): void;
  /** Ends the redrawn line so whatever follows starts on a fresh one. */
  finish(): void;
}

const BAR_WIDTH = 28;

function bar(progress: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, progress)) * BAR_WIDTH);
  return `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
}

function describe(job: JobView): string {
  const phase = job.phase ?? (job.status === "queued" ? "waiting for a worker" : "");
  const worker = job.worker_id === null ? "" : ` on ${job.worker_id}`;
  const attempt = job.attempts > 1 ? ` (attempt ${job.attempts})` : "";
  return `${job.status}${worker}${attempt}${phase === "" ? "" : ` · ${phase}`}`;
}

/**
 * On a terminal one line is redrawn (bar, %, phase, elapsed). Piped into a file or CI log, a
 * line is printed only when the status or phase changes or progress crosses a 10% step, so logs
 * stay short and still show where a job stalled.
 */
export function createProgressReporter(io: CliIo, startedAt: number = Date.now()): ProgressReporter {
  let lastKey = "";
  let drawn = false;
  return {
    update(job) {
      const pct = Math.round(job.progress * 100);
      const elapsed = formatDuration((Date.now() - startedAt) / 1000);
      if (io.isTTY) {
        io.stdout.write(`\r\x1b[2K${bar(job.progress)} ${String(pct).padStart(3)}%  ${describe(job)}  ${elapsed}`);
        drawn = true;
        return;
      }
      const key = `${job.status}|${job.phase ?? ""}|${job.worker_id ?? ""}|${Math.floor(pct / 10)}`;
      if (key === lastKey) return;
      lastKey = key;
      io.stdout.write(`${String(pct).padStart(3)}%  ${describe(job)}  (${elapsed})\n`);
    },
    finish() {
      if (drawn) io.stdout.write("\n");
      drawn = false;
    },
  };
}
