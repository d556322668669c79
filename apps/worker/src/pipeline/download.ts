import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { classifyAddress, createGuardedAgent, findEgressRefusal, normalizeHostname, systemResolve, type Resolve } from "@fleet/egress";
import { request, type Agent, type Dispatcher } from "undici";
import type { Logger } from "../logger.js";
import { describeNetworkError } from "../util/network-error.js";
import { backoffDelay } from "../util/backoff.js";
import { sleep } from "../util/sleep.js";
import { JobAbortedError, JobError, abortReasonOf } from "../errors/job-error.js";

const MAX_REDIRECTS = 5;

export interface DownloadLimits {
  maxBytes: number;
  timeoutMs: number;
  attempts: number;
  allowPrivate: boolean;
}

export interface DownloadResult {
  bytes: number;
  contentType: string | null;
  attempts: number;
}

/**
 * The connection pool for input downloads: the guarded agent of @fleet/egress, the same policy
 * the orchestrator applies at submit and to webhooks. Without ALLOW_PRIVATE_NETWORK_URLS every
 * connection (redirects included) must go to an address that was checked. `resolve` is
 * injectable so tests never ask real DNS about a name.
 */
export function createDownloadAgent(opts: { allowPrivate: boolean; connectTimeoutMs: number; resolve?: Resolve }): Agent {
  return createGuardedAgent({
    allowPrivate: opts.allowPrivate,
    resolve: opts.resolve ?? systemResolve,
    connectTimeoutMs: opts.connectTimeoutMs,
    keepAliveTimeoutMs: 4_000,
  });
}

/** Where a URL points, without its query string (presigned URLs carry credentials there). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? "?…" : ""}`;
  } catch {
    return "(invalid url)";
  }
}

class RetryableDownloadError extends Error {
  constructor(
    message: string,
    readonly statusCode: number | null,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

export interface DownloadOptions {
  url: string;
  dest: string;
  what: "video" | "audio";
  limits: DownloadLimits;
  dispatcher: Dispatcher;
  signal: AbortSignal;
  log: Logger;
}

/**
 * Streams `url` to `dest` with a size cap and a time limit. Redirects are followed by hand so
 * each hop is re-checked. Only network errors, 5xx and 429 are retried; any other answer is final
 * (a 404 stays a 404). Every failure here is a `download_error`, the job's fault:
 * an input host that answers 503 says nothing about this worker.
 */
export async function downloadToFile(opts: DownloadOptions): Promise<DownloadResult> {
  const { limits, log, what } = opts;
  let lastError: RetryableDownloadError | null = null;
  for (let attempt = 1; attempt <= limits.attempts; attempt++) {
    if (opts.signal.aborted) throw new JobAbortedError(abortReasonOf(opts.signal));
    try {
      const result = await downloadOnce(opts);
      return { ...result, attempts: attempt };
    } catch (err) {
      await rm(opts.dest, { force: true });
      if (opts.signal.aborted) throw new JobAbortedError(abortReasonOf(opts.signal));
      if (!(err instanceof RetryableDownloadError)) throw err;
      lastError = err;
      log.warn(
        { what, url: redactUrl(opts.url), attempt, attempts: limits.attempts, statusCode: err.statusCode, err },
        "download_retry",
      );
      if (attempt < limits.attempts) {
        await sleep(err.retryAfterMs ?? backoffDelay(attempt, 1_000, 10_000), opts.signal);
      }
    }
  }
  throw JobError.download(`failed to download ${what} after ${limits.attempts} attempts: ${lastError?.message}`, true, {
    url: redactUrl(opts.url),
    status_code: lastError?.statusCode ?? null,
    attempts: limits.attempts,
  });
}

async function downloadOnce(opts: DownloadOptions): Promise<{ bytes: number; contentType: string | null }> {
  const { limits, what } = opts;
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const signal = AbortSignal.any([opts.signal, timeout]);
  let url = opts.url;
  try {
    for (let hop = 0; ; hop++) {
      const target = checkTarget(url, what, limits.allowPrivate);
      const res = await request(target, {
        method: "GET",
        dispatcher: opts.dispatcher,
        signal,
        headersTimeout: Math.min(limits.timeoutMs, 60_000),
        bodyTimeout: Math.min(limits.timeoutMs, 60_000),
        headers: { "user-agent": "fleet-worker", accept: "*/*" },
      });
      const { statusCode } = res;
      if (statusCode >= 300 && statusCode < 400 && res.headers.location) {
        await res.body.dump();
        if (hop >= MAX_REDIRECTS) throw JobError.download(`${what} URL redirected more than ${MAX_REDIRECTS} times`, false, { url: redactUrl(opts.url) });
        url = new URL(String(res.headers.location), target).toString();
        continue;
      }
      if (statusCode === 429 || statusCode >= 500) {
        await res.body.dump();
        throw new RetryableDownloadError(`HTTP ${statusCode}`, statusCode, retryAfterMs(res.headers["retry-after"]));
      }
      if (statusCode < 200 || statusCode >= 300) {
        await res.body.dump();
        throw JobError.download(`${what} download failed: HTTP ${statusCode}`, false, { url: redactUrl(url), status_code: statusCode });
      }
      const declared = Number(res.headers["content-length"] ?? NaN);
      if (Number.isFinite(declared) && declared > limits.maxBytes) {
        await res.body.dump({ limit: 0 }).catch(() => undefined);
        throw JobError.media("download", `${what} is ${declared} bytes, over the ${limits.maxBytes}-byte limit`, {
          url: redactUrl(url),
          bytes: declared,
          max_bytes: limits.maxBytes,
        });
      }
      let bytes = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          if (bytes > limits.maxBytes) {
            cb(JobError.media("download", `${what} exceeds the ${limits.maxBytes}-byte limit`, { url: redactUrl(url), max_bytes: limits.maxBytes }));
          } else cb(null, chunk);
        },
      });
      await pipeline(res.body, counter, createWriteStream(opts.dest), { signal });
      if (bytes === 0) throw JobError.media("download", `downloaded ${what} file is empty`, { url: redactUrl(url) });
      const contentType = typeof res.headers["content-type"] === "string" ? res.headers["content-type"] : null;
      if (contentType && !/video|audio|octet-stream|image/i.test(contentType)) {
        opts.log.warn({ what, url: redactUrl(url), contentType }, "download_unexpected_content_type");
      }
      return { bytes, contentType };
    }
  } catch (err) {
    if (err instanceof JobError || opts.signal.aborted) throw err;
    const refused = findEgressRefusal(err);
    if (refused) throw JobError.media("download", `${what} URL not allowed: ${refused.message}`, { url: redactUrl(url) });
    if (timeout.aborted) throw new RetryableDownloadError(`timed out after ${limits.timeoutMs} ms`, null);
    throw new RetryableDownloadError(describeNetworkError(err), null);
  }
}

function checkTarget(url: string, what: string, allowPrivate: boolean): URL {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw JobError.media("download", `${what} URL is not a valid URL`, {});
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw JobError.media("download", `${what} URL must be http(s), got ${target.protocol}`, { url: redactUrl(url) });
  }
  // The guarded agent refuses this too; checking here names the hop without opening a pool slot.
  const host = normalizeHostname(target.hostname);
  const verdict = classifyAddress(host);
  if (!allowPrivate && verdict.range !== "not_an_address" && !verdict.public) {
    throw JobError.media("download", `${what} URL not allowed: ${host} is not a public address (${verdict.range}); set ALLOW_PRIVATE_NETWORK_URLS=true to allow`, {
      url: redactUrl(url),
    });
  }
  return target;
}

function retryAfterMs(header: string | string[] | undefined): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.min(Math.max(seconds, 0), 30) * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.min(Math.max(date - Date.now(), 0), 30_000) : null;
}
