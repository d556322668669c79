import { randomUUID } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import type { JobView } from "@fleet/contract";
import type { CommandContext } from "./command.js";
import { FleetApiError } from "./fleet-api-error.js";
import { chooseAdvertiseHost, startLocalFileServer } from "./local-file-server.js";
import type { LocalFileServer } from "./local-file-server.js";
import { createProgressReporter } from "./progress-reporter.js";
import { UsageError } from "./usage-error.js";
import { isTerminal, waitForJob } from "./wait-for-job.js";

export interface SubmitInput {
  video: string;
  audio: string;
  aspectRatio?: string | undefined;
  resolution?: string | undefined;
  priority?: number | undefined;
  idempotencyKey?: string | undefined;
  wait: boolean;
  /** Host put into the URLs of served local files; chosen from the orchestrator URL when unset. */
  serveHost?: string | undefined;
}

export type SubmitOutcome =
  | { kind: "submitted"; job: JobView }
  | { kind: "finished"; job: JobView }
  | { kind: "interrupted"; job: JobView; cancelled: boolean };

function isUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

function checkFile(flag: string, path: string): void {
  if (!existsSync(path)) throw new UsageError(`--${flag} ${path}: no such file (and not an http(s) URL)`);
  if (!statSync(path).isFile()) throw new UsageError(`--${flag} ${path}: not a file`);
}

/** Turns a 422 url_not_allowed into the setting that fixes it. */
function explainCreateError(err: unknown, servedFiles: boolean): unknown {
  if (err instanceof FleetApiError && err.code === "url_not_allowed" && servedFiles) {
    err.message +=
      "\n  local files are served from this machine's private address; the orchestrator accepts such URLs only with ALLOW_PRIVATE_NETWORK_URLS=true (development), otherwise pass public http(s) URLs";
  }
  return err;
}

/**
 * Submits a job, serving local files when given paths, and (with wait) follows it to the end.
 * Served files vanish when the CLI exits, so waiting is required for them and an interrupted
 * wait cancels the job instead of leaving it to fail at download.
 */
export async function submitJob(ctx: CommandContext, input: SubmitInput): Promise<SubmitOutcome> {
  const local = [
    ["video", input.video],
    ["audio", input.audio],
  ].filter(([, v]) => !isUrl(v ?? ""));
  for (const [flag, path] of local) checkFile(flag ?? "", path ?? "");
  if (local.length > 0 && !input.wait) {
    throw new UsageError("local files are served from this machine only while fleet waits for the job: add --wait");
  }
  let server: LocalFileServer | null = null;
  try {
    let videoUrl = input.video;
    let audioUrl = input.audio;
    if (local.length > 0) {
      server = await startLocalFileServer({ advertiseHost: input.serveHost ?? chooseAdvertiseHost(ctx.client.baseUrl) });
      if (!isUrl(videoUrl)) videoUrl = await server.serve(videoUrl);
      if (!isUrl(audioUrl)) audioUrl = await server.serve(audioUrl);
      if (!ctx.json) ctx.io.stderr.write(`serving local inputs at ${new URL(videoUrl).origin} while the job runs\n`);
    }
    let job: JobView;
    try {
      job = await ctx.client.call("createJob", {
        body: {
          video_url: videoUrl,
          audio_url: audioUrl,
          ...(input.aspectRatio === undefined ? {} : { aspect_ratio: input.aspectRatio }),
          ...(input.resolution === undefined ? {} : { resolution: input.resolution }),
          ...(input.priority === undefined ? {} : { priority: input.priority }),
        },
        // A fresh key per invocation: a retried request inside this run can never create a twin.
        headers: { "idempotency-key": input.idempotencyKey ?? randomUUID() },
      });
    } catch (err) {
      throw explainCreateError(err, server !== null);
    }
    if (!ctx.json) ctx.io.stdout.write(`job ${job.id} ${job.status}\n`);
    if (!input.wait) return { kind: "submitted", job };
    return await followJob(ctx, job, server !== null);
  } finally {
    await server?.close();
  }
}

async function followJob(ctx: CommandContext, job: JobView, cancelOnInterrupt: boolean): Promise<SubmitOutcome> {
  const reporter = ctx.json ? null : createProgressReporter(ctx.io);
  let last = job;
  try {
    last = await waitForJob(ctx.client, job.id, {
      signal: ctx.signal,
      onUpdate: (j) => {
        last = j;
        reporter?.update(j);
      },
    });
    return { kind: "finished", job: last };
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
    reporter?.finish();
    if (cancelOnInterrupt && !isTerminal(last)) {
      const res = await ctx.client.call("cancelJob", { params: { id: job.id } });
      return { kind: "interrupted", job: res.job, cancelled: true };
    }
    return { kind: "interrupted", job: last, cancelled: false };
  } finally {
    reporter?.finish();
  }
}
