import type { JobView } from "@fleet/contract";
import { stringOption } from "../command.js";
import type { Command, CommandContext } from "../command.js";
import { describeJobFailure } from "../format/job-details.js";
import { describeOutputLocation } from "../output-location.js";
import { submitJob } from "../submit-job.js";
import type { SubmitOutcome } from "../submit-job.js";
import { UsageError } from "../usage-error.js";

/** Prints how a followed job ended and returns the exit code: 0 only for success. */
export function reportOutcome(ctx: CommandContext, outcome: SubmitOutcome, opts: { printJson?: boolean } = {}): number {
  const { io, json } = ctx;
  const job: JobView = outcome.job;
  if (json && opts.printJson !== false) io.stdout.write(JSON.stringify(job, null, 2) + "\n");
  if (outcome.kind === "submitted") {
    if (!json) io.stdout.write(`follow it with: fleet job ${job.id}\n`);
    return 0;
  }
  if (outcome.kind === "interrupted") {
    io.stderr.write(
      outcome.cancelled
        ? `interrupted: job ${job.id} cancelled (its inputs were served by this command)\n`
        : `stopped waiting; job ${job.id} keeps running: fleet job ${job.id}\n`,
    );
    return 130;
  }
  if (job.status === "succeeded") {
    if (!json) {
      for (const line of describeOutputLocation(job, ctx.localOutputs)) io.stdout.write(line + "\n");
    }
    return 0;
  }
  io.stderr.write(`job ${job.id} ${job.status}: ${job.status === "cancelled" ? (job.error ?? "cancelled") : describeJobFailure(job)}\n`);
  return 1;
}

export const submitCommand: Command = {
  name: "submit",
  summary: "Submit a lip-sync job (URLs or local files) and optionally wait for it",
  usage:
    "fleet submit --video URL|FILE --audio URL|FILE [--aspect-ratio 9:16] [--resolution 720p] [--priority N] [--wait] [--serve-host HOST] [--json]",
  options: {
    video: { type: "string" },
    audio: { type: "string" },
    "aspect-ratio": { type: "string" },
    resolution: { type: "string" },
    priority: { type: "string" },
    "idempotency-key": { type: "string" },
    wait: { type: "boolean", short: "w" },
    "serve-host": { type: "string" },
  },
  async run(ctx) {
    const { values } = ctx;
    const video = stringOption(values, "video");
    const audio = stringOption(values, "audio");
    if (video === undefined || audio === undefined) throw new UsageError("--video and --audio are required");
    if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument ${ctx.positionals[0]}`);
    const priorityText = stringOption(values, "priority");
    const priority = priorityText === undefined ? undefined : Number(priorityText);
    if (priority !== undefined && !Number.isInteger(priority)) throw new UsageError("--priority must be an integer");
    const outcome = await submitJob(ctx, {
      video,
      audio,
      aspectRatio: stringOption(values, "aspect-ratio"),
      resolution: stringOption(values, "resolution"),
      priority,
      idempotencyKey: stringOption(values, "idempotency-key"),
      wait: values.wait === true,
      serveHost: stringOption(values, "serve-host"),
    });
    return reportOutcome(ctx, outcome);
  },
};
