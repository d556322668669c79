import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import type { B2FileInfo } from "backblaze-b2";
import type { B2Settings } from "../config.js";
import type { Logger } from "../logger.js";
import { JobAbortedError, JobError, abortReasonOf } from "../pipeline/job-error.js";
import { backoffDelay } from "../util/backoff.js";
import { sleep } from "../util/sleep.js";
import { encodeKey, type OutputStorage, type StoredObject } from "./output-storage.js";
import { authorizeAccount, type B2Account } from "./b2-account.js";
import { B2CallError, toB2CallError } from "./b2-call-error.js";
import { cancelStaleLargeFiles } from "./b2-stale-large-files.js";
import { bufferBody, fileBody, fileSha1, type UploadBody } from "./upload-body.js";

/** B2 tokens live 24 h; renew an hour early rather than fail an upload at the boundary. */
const AUTH_MAX_AGE_MS = 23 * 3600_000;
const ATTEMPTS = 5;
/** B2's large-file limits: parts of at most 5 GB (decimal), at most 10,000 of them. */
export const MAX_PART_BYTES = 5_000_000_000;
export const MAX_PARTS = 10_000;

/**
 * The part size for a file: the configured one, or larger when the file would need more than
 * 10,000 parts. Null when even 5 GB parts are not enough (a file B2 cannot hold).
 */
export function partSizeFor(size: number, configured: number): number | null {
  const needed = Math.max(configured, Math.ceil(size / MAX_PARTS));
  return needed > MAX_PART_BYTES ? null : needed;
}

/**
 * Outputs to Backblaze B2 through `backblaze-b2` (B2's native API, v2). The authorization is
 * cached and renewed on expiry or a refused token; files above the large-file threshold go up in
 * parts read straight from disk, so memory stays flat whatever the size; every part and file
 * carries its SHA-1 (as a trailer, so the file is read once) and the SHA-1 B2 reports back is
 * compared with ours. 5xx/429/408, network errors and checksum mismatches are retried with backoff
 * (or B2's Retry-After) on a fresh upload URL, as B2 asks. A retry after a reply that may have been
 * lost first looks for what the lost call did, so one putFile leaves one version of its key.
 */
export function createB2Storage(opts: { settings: B2Settings; log: Logger; retryBaseMs?: number; version?: string | null }): OutputStorage {
  const s = opts.settings;
  const retryBaseMs = opts.retryBaseMs ?? 1_000;
  const log = opts.log;
  const userAgent = `fleet-worker/${opts.version ?? packageVersion()} backblaze-b2/1.7.1 node/${process.versions.node}`;
  let auth: B2Account | null = null;
  let authorizing: Promise<B2Account> | null = null;
  let started = false;

  /** Single flight: concurrent uploads that all see a refused token re-authorize once. */
  async function getAuth(signal: AbortSignal): Promise<B2Account> {
    if (auth && Date.now() - auth.at < AUTH_MAX_AGE_MS) return auth;
    const stale = auth;
    authorizing ??= authorizeAccount(s, userAgent, signal).finally(() => {
      authorizing = null;
    });
    const fresh = await authorizing;
    if (auth === stale) auth = fresh;
    return auth ?? fresh;
  }

  /**
   * Runs one B2 step with the retry policy. `step` gets the current authorization; a refused
   * account token renews it, a refused upload token just retries (the step asks for a new URL
   * itself). Anything not retryable ends the upload.
   */
  async function withRetries<T>(what: string, signal: AbortSignal, step: (a: B2Account, attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
      let a: B2Account;
      try {
        a = await getAuth(signal);
      } catch (err) {
        if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
        const e = toB2CallError(err, "b2_authorize_account");
        if (!e.retryable || attempt >= ATTEMPTS) throw uploadError(what, e);
        await sleep(e.delayMs(backoffDelay(attempt, retryBaseMs, 30_000)), signal);
        continue;
      }
      try {
        return await step(a, attempt);
      } catch (err) {
        if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
        if (err instanceof JobError || err instanceof JobAbortedError) throw err;
        const e = toB2CallError(err, what);
        if (e.isAccountTokenRejected && auth === a) auth = null;
        log.warn({ op: e.op, statusCode: e.statusCode, code: e.code, error: e.message, attempt, attempts: ATTEMPTS }, "b2_call_failed");
        if (!e.retryable || attempt >= ATTEMPTS) throw uploadError(what, e);
        if (!e.tokenRejected) await sleep(e.delayMs(backoffDelay(attempt, retryBaseMs, 30_000)), signal);
      }
    }
  }

  /** The newest version of `key` when it holds exactly the bytes whose SHA-1 is `sha1`. */
  async function findUploaded(a: B2Account, key: string, sha1: string, signal: AbortSignal): Promise<B2FileInfo | null> {
    const res = await call("b2_list_file_names", () =>
      a.b2.listFileNames({ bucketId: a.bucketId, prefix: key, startFileName: key, maxFileCount: 1, axiosOverride: { signal, timeout: 30_000 } }),
    );
    const file = res.data.files[0];
    return file?.fileName === key && file.contentSha1 === sha1 ? file : null;
  }

  async function uploadSmall(o: { key: string; size: number; body: () => UploadBody; contentType: string; signal: AbortSignal }) {
    // The SHA-1 of a body sent in full whose reply never came: it may be stored already.
    let maybeStored: string | null = null;
    return withRetries("upload", o.signal, async (a) => {
      if (maybeStored !== null) {
        const found = await findUploaded(a, o.key, maybeStored, o.signal);
        if (found) {
          log.info({ key: o.key, fileId: found.fileId }, "b2_upload_found_after_lost_reply");
          return { size: found.contentLength, sha1: maybeStored };
        }
      }
      const url = await call("b2_get_upload_url", () => a.b2.getUploadUrl({ bucketId: a.bucketId, axiosOverride: { signal: o.signal, timeout: 30_000 } }));
      const body = o.body();
      let res;
      try {
        res = await call("b2_upload_file", () =>
          a.b2.uploadFile({
            uploadUrl: url.data.uploadUrl,
            uploadAuthToken: url.data.authorizationToken,
            fileName: o.key,
            data: body.data,
            contentLength: body.contentLength,
            hash: body.hash,
            mime: o.contentType,
            axiosOverride: { signal: AbortSignal.any([o.signal, AbortSignal.timeout(transferTimeoutMs(o.size))]) },
          }),
        );
      } catch (err) {
        // A B2 error reply means nothing was stored; no reply at all means we cannot know.
        if (toB2CallError(err, "b2_upload_file").statusCode === null) maybeStored = sentSha1(body);
        throw err;
      }
      verify("b2_upload_file", res.data.contentSha1, body.sha1(), res.data.contentLength, o.size);
      return { size: res.data.contentLength, sha1: body.sha1() };
    });
  }

  /** b2_get_file_info, or null when B2 has no finished file under that id. */
  async function finishedFile(a: B2Account, fileId: string, signal: AbortSignal): Promise<B2FileInfo | null> {
    try {
      return (await call("b2_get_file_info", () => a.b2.getFileInfo({ fileId, axiosOverride: { signal, timeout: 30_000 } }))).data;
    } catch (err) {
      const e = toB2CallError(err, "b2_get_file_info");
      // 404 not_found for an unknown id; an unfinished large file is refused as a bad request.
      if (e.statusCode === 404 || (e.statusCode === 400 && e.code === "bad_request")) return null;
      throw e;
    }
  }

  async function uploadLarge(filePath: string, key: string, size: number, contentType: string, signal: AbortSignal): Promise<string> {
    const partSize = partSizeFor(size, s.partSizeBytes);
    if (partSize === null) {
      throw JobError.processing("upload", `Output of ${size} bytes exceeds B2's largest file (${MAX_PARTS} parts of ${MAX_PART_BYTES} bytes)`, false);
    }
    const wholeSha1 = await fileSha1(filePath);
    const fileId = await withRetries("upload", signal, async (a) => {
      const res = await call("b2_start_large_file", () =>
        a.b2.startLargeFile({
          bucketId: a.bucketId,
          fileName: key,
          contentType,
          // backblaze-b2 has no fileInfo argument; its request body is merged with this one.
          axiosOverride: { data: { fileInfo: { large_file_sha1: wholeSha1 } }, signal, timeout: 30_000 },
        }),
      );
      return res.data.fileId;
    });
    let finishSent = false;
    try {
      const partSha1Array: string[] = [];
      let partUrl: { uploadUrl: string; authorizationToken: string } | null = null;
      for (let start = 0, part = 1; start < size; start += partSize, part++) {
        const end = Math.min(size, start + partSize) - 1;
        const length = end - start + 1;
        const sha1 = await withRetries("upload", signal, async (a) => {
          partUrl ??= (await call("b2_get_upload_part_url", () => a.b2.getUploadPartUrl({ fileId, axiosOverride: { signal, timeout: 30_000 } }))).data;
          try {
            const body = fileBody(filePath, length, { start, end });
            const res = await call("b2_upload_part", () =>
              a.b2.uploadPart({
                uploadUrl: partUrl!.uploadUrl,
                uploadAuthToken: partUrl!.authorizationToken,
                partNumber: part,
                data: body.data,
                contentLength: body.contentLength,
                hash: body.hash,
                axiosOverride: { signal: AbortSignal.any([signal, AbortSignal.timeout(transferTimeoutMs(length))]) },
              }),
            );
            verify("b2_upload_part", res.data.contentSha1, body.sha1(), res.data.contentLength, length);
            return body.sha1();
          } catch (err) {
            // B2: after any failure on an upload URL, get a new one.
            partUrl = null;
            throw err;
          }
        });
        partSha1Array.push(sha1);
        log.debug({ key, part, bytes: length }, "b2_part_uploaded");
      }
      // A finish whose reply was lost may have finished the file, and a second finish is then a
      // 400: B2 says to look the file up, so every attempt after the first does that first.
      const finished = await withRetries("upload", signal, async (a) => {
        if (finishSent) {
          const found = await finishedFile(a, fileId, signal);
          if (found) {
            log.info({ key, fileId }, "b2_large_file_found_after_lost_reply");
            return found;
          }
        }
        finishSent = true;
        return (await call("b2_finish_large_file", () => a.b2.finishLargeFile({ fileId, partSha1Array, axiosOverride: { signal, timeout: 60_000 } }))).data;
      });
      if (finished.contentLength !== size || finished.fileInfo?.large_file_sha1 !== wholeSha1) {
        throw JobError.processing(
          "upload",
          `B2 assembled ${finished.contentLength} bytes with large_file_sha1=${finished.fileInfo?.large_file_sha1}, expected ${size} bytes with ${wholeSha1}`,
          true,
        );
      }
      return wholeSha1;
    } catch (err) {
      void cancelLarge(fileId, finishSent);
      throw err;
    }
  }

  /** Cancels an unfinished large file; never one a finish may have completed (B2 would keep it anyway). */
  async function cancelLarge(fileId: string, finishSent: boolean) {
    try {
      const a = await getAuth(AbortSignal.timeout(30_000));
      if (finishSent && (await finishedFile(a, fileId, AbortSignal.timeout(30_000)))) {
        log.warn({ fileId }, "b2_large_file_kept_finished");
        return;
      }
      await a.b2.cancelLargeFile({ fileId, axiosOverride: { timeout: 30_000 } });
    } catch (err) {
      log.warn({ fileId, error: toB2CallError(err, "b2_cancel_large_file").message }, "b2_cancel_large_file_failed");
    }
  }

  /**
   * The output's link. Public bucket: the plain download-by-name URL, good forever. Private
   * bucket: the same URL with a download authorization for exactly this key, good for
   * B2_DOWNLOAD_URL_TTL_SEC (B2 allows at most 7 days).
   */
  async function urlFor(key: string, signal: AbortSignal): Promise<string> {
    return withRetries("download authorization", signal, async (a) => {
      const plain = `${a.downloadUrl}/file/${encodeURIComponent(s.bucketName)}/${encodeKey(key)}`;
      if (!a.authorizedLinks) return plain;
      const res = await call("b2_get_download_authorization", () =>
        a.b2.getDownloadAuthorization({
          bucketId: a.bucketId,
          fileNamePrefix: key,
          validDurationInSeconds: s.downloadUrlTtlSec,
          axiosOverride: { signal, timeout: 30_000 },
        }),
      );
      return `${plain}?Authorization=${encodeURIComponent(res.data.authorizationToken)}`;
    });
  }

  /** Once per process, after the first good authorization: say the mode, clear stale large files. */
  async function onStart(a: B2Account, signal: AbortSignal) {
    log.info(
      {
        bucket: s.bucketName,
        bucketType: a.bucketType,
        links: a.authorizedLinks ? "authorized" : "public",
        linkTtlSec: a.authorizedLinks ? s.downloadUrlTtlSec : null,
        prefix: s.prefix,
      },
      "b2_storage_mode",
    );
    if (s.cancelUnfinishedAfterMs === null) return;
    try {
      const r = await cancelStaleLargeFiles({
        account: a,
        namePrefix: s.prefix ? `${s.prefix}/` : "",
        olderThanMs: s.cancelUnfinishedAfterMs,
        userAgent,
        signal,
        log,
      });
      log.info({ ...r, olderThanHours: s.cancelUnfinishedAfterMs / 3600_000 }, "b2_stale_large_files_checked");
    } catch (err) {
      // Stale parts cost storage, not correctness: never a reason to refuse work.
      log.warn({ error: toB2CallError(err, "b2_list_unfinished_large_files").message }, "b2_stale_large_files_failed");
    }
  }

  return {
    kind: "b2",
    async check(signal) {
      let a: B2Account;
      try {
        a = await getAuth(signal);
      } catch (err) {
        const e = toB2CallError(err, "b2_authorize_account");
        const why = e.isConfiguration ? "configuration: " : "";
        throw new Error(`B2 not usable: ${why}${e.message}`, { cause: err });
      }
      if (!started) {
        started = true;
        await onStart(a, signal);
      }
    },

    async putFile({ filePath, key, contentType, signal }) {
      const { size } = await stat(filePath);
      if (size === 0) throw JobError.processing("upload", "Output file is empty (0 bytes)", false);
      const t0 = Date.now();
      log.info({ key, bytes: size, bucket: s.bucketName, large: size > s.largeFileThresholdBytes }, "b2_upload_start");
      let sha1: string;
      if (size > s.largeFileThresholdBytes) {
        sha1 = await uploadLarge(filePath, key, size, contentType, signal);
      } else {
        ({ sha1 } = await uploadSmall({ key, size, contentType, signal, body: () => fileBody(filePath, size) }));
      }
      const url = await urlFor(key, signal);
      log.info({ key, bytes: size, seconds: (Date.now() - t0) / 1000 }, "b2_upload_success");
      return { key, url, bytes: size, sha1 } satisfies StoredObject;
    },

    async putJson({ key, value, signal }) {
      const buf = Buffer.from(JSON.stringify(value, null, 2));
      const { sha1 } = await uploadSmall({ key, size: buf.length, contentType: "application/json", signal, body: () => bufferBody(buf) });
      return { key, url: await urlFor(key, signal), bytes: buf.length, sha1 };
    },

    async close() {},
  };
}

/** A transfer may take a minute to start plus one second per 256 KiB: generous, but never forever (§8.16). */
function transferTimeoutMs(bytes: number): number {
  return 60_000 + Math.ceil(bytes / (256 * 1024)) * 1000;
}

async function call<T>(op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toB2CallError(err, op);
  }
}

/** The SHA-1 of a body that went out in full, or null when it broke off (B2 cannot have stored it). */
function sentSha1(body: UploadBody): string | null {
  try {
    return body.sha1();
  } catch {
    return null;
  }
}

/** B2 echoes the SHA-1 it computed; a mismatch means the bytes it stored are not ours. */
function verify(op: string, theirs: string | undefined, ours: string, theirLength: number | undefined, ourLength: number) {
  if (theirs !== ours || theirLength !== ourLength) {
    throw new B2CallError(op, null, "sha1_mismatch", `B2 stored sha1=${theirs} length=${theirLength}, sent sha1=${ours} length=${ourLength}`);
  }
}

function uploadError(what: string, e: B2CallError): JobError {
  const message = e.isConfiguration ? `B2 ${what} failed: configuration: ${e.message}` : `B2 ${what} failed: ${e.message}`;
  return JobError.processing("upload", message, e.retryable, {
    op: e.op,
    status_code: e.statusCode,
    b2_code: e.code,
  });
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
