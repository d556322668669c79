import { stat } from "node:fs/promises";
import B2 from "backblaze-b2";
import type { B2Settings } from "../config.js";
import type { Logger } from "../logger.js";
import { JobAbortedError, JobError, abortReasonOf } from "../pipeline/job-error.js";
import { backoffDelay } from "../util/backoff.js";
import { sleep } from "../util/sleep.js";
import { checkStorageKey, encodeKey, type OutputStorage, type StoredObject } from "./output-storage.js";
import { B2CallError, toB2CallError } from "./b2-call-error.js";
import { bufferBody, fileBody, type UploadBody } from "./upload-body.js";

/** B2 tokens live 24 h; renew an hour early rather than fail an upload at the boundary. */
const AUTH_MAX_AGE_MS = 23 * 3600_000;
const ATTEMPTS = 5;

interface AuthState {
  b2: B2;
  at: number;
  downloadUrl: string;
  bucketId: string;
}

/**
 * Outputs to Backblaze B2 through `backblaze-b2`. The authorization is cached and renewed on
 * expiry or a 401; files above the large-file threshold go up in parts read straight from disk,
 * so memory stays flat whatever the size; every part and file carries its SHA-1 (as a trailer, so
 * the file is read once) and the SHA-1 B2 reports back is compared with ours. 5xx/429/408 and network errors are retried with backoff on
 * a fresh upload URL, as B2 asks. The URL comes from the account's downloadUrl (the original
 * hard-coded f000, §8.19).
 */
export function createB2Storage(opts: { settings: B2Settings; log: Logger; retryBaseMs?: number }): OutputStorage {
  const s = opts.settings;
  const retryBaseMs = opts.retryBaseMs ?? 1_000;
  const log = opts.log;
  let auth: AuthState | null = null;
  let authorizing: Promise<AuthState> | null = null;

  async function authorize(signal: AbortSignal): Promise<AuthState> {
    const b2 = new B2({ applicationKeyId: s.keyId, applicationKey: s.appKey, retry: { retries: 0 } });
    let res;
    try {
      res = await b2.authorize({ axiosOverride: { url: s.authorizeUrl, signal, timeout: 30_000 } });
    } catch (err) {
      throw toB2CallError(err, "b2_authorize_account");
    }
    const allowed = res.data.allowed;
    let bucketId = allowed?.bucketName === s.bucketName ? (allowed.bucketId ?? null) : null;
    if (!bucketId) {
      try {
        const buckets = await b2.getBucket({ bucketName: s.bucketName, axiosOverride: { signal, timeout: 30_000 } });
        bucketId = buckets.data.buckets.find((b) => b.bucketName === s.bucketName)?.bucketId ?? null;
      } catch (err) {
        throw toB2CallError(err, "b2_list_buckets");
      }
    }
    if (!bucketId) throw new B2CallError("b2_list_buckets", null, "bucket_not_found", `bucket ${s.bucketName} not found or not allowed for this key`);
    log.info({ bucket: s.bucketName, downloadUrl: res.data.downloadUrl }, "b2_authorized");
    return { b2, at: Date.now(), downloadUrl: res.data.downloadUrl.replace(/\/+$/, ""), bucketId };
  }

  /** Single flight: concurrent uploads that all see an expired token re-authorize once. */
  async function getAuth(signal: AbortSignal, force = false): Promise<AuthState> {
    if (!force && auth && Date.now() - auth.at < AUTH_MAX_AGE_MS) return auth;
    const stale = auth;
    authorizing ??= authorize(signal).finally(() => {
      authorizing = null;
    });
    const fresh = await authorizing;
    if (auth === stale) auth = fresh;
    return auth ?? fresh;
  }

  /**
   * Runs one B2 step with the retry policy. `step` gets the current authorization; a 401 renews
   * it (expired account token) or just retries (expired upload-URL token, the step asks for a new
   * URL itself). Anything not retryable ends the upload.
   */
  async function withRetries<T>(what: string, signal: AbortSignal, step: (a: AuthState, attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
      let a: AuthState;
      try {
        a = await getAuth(signal);
      } catch (err) {
        if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
        const e = err instanceof B2CallError ? err : toB2CallError(err, "b2_authorize_account");
        if (!e.retryable || attempt >= ATTEMPTS) throw uploadError(what, e);
        await sleep(backoffDelay(attempt, retryBaseMs, 30_000), signal);
        continue;
      }
      try {
        return await step(a, attempt);
      } catch (err) {
        if (signal.aborted) throw new JobAbortedError(abortReasonOf(signal));
        if (err instanceof JobError || err instanceof JobAbortedError) throw err;
        const e = err instanceof B2CallError ? err : toB2CallError(err, what);
        if (e.isAccountAuthExpired && auth === a) auth = null;
        log.warn({ op: e.op, statusCode: e.statusCode, code: e.code, error: e.message, attempt, attempts: ATTEMPTS }, "b2_call_failed");
        if (!e.retryable || attempt >= ATTEMPTS) throw uploadError(what, e);
        if (!e.isAuthExpired) await sleep(backoffDelay(attempt, retryBaseMs, 30_000), signal);
      }
    }
  }

  async function uploadSmall(opts2: { key: string; size: number; body: () => UploadBody; contentType: string; signal: AbortSignal }) {
    return withRetries("upload", opts2.signal, async (a) => {
      const url = await call("b2_get_upload_url", () => a.b2.getUploadUrl({ bucketId: a.bucketId, axiosOverride: { signal: opts2.signal, timeout: 30_000 } }));
      const body = opts2.body();
      const res = await call("b2_upload_file", () =>
        a.b2.uploadFile({
          uploadUrl: url.data.uploadUrl,
          uploadAuthToken: url.data.authorizationToken,
          fileName: opts2.key,
          data: body.data,
          contentLength: body.contentLength,
          hash: body.hash,
          mime: opts2.contentType,
          axiosOverride: { signal: AbortSignal.any([opts2.signal, AbortSignal.timeout(transferTimeoutMs(opts2.size))]) },
        }),
      );
      verify("b2_upload_file", res.data.contentSha1, body.sha1(), res.data.contentLength, opts2.size);
      return { a, size: res.data.contentLength, sha1: body.sha1() };
    });
  }

  async function uploadLarge(filePath: string, key: string, size: number, contentType: string, signal: AbortSignal) {
    const fileId = await withRetries("upload", signal, async (a) => {
      const res = await call("b2_start_large_file", () =>
        a.b2.startLargeFile({ bucketId: a.bucketId, fileName: key, contentType, axiosOverride: { signal, timeout: 30_000 } }),
      );
      return res.data.fileId;
    });
    try {
      const partSha1Array: string[] = [];
      let partUrl: { uploadUrl: string; authorizationToken: string } | null = null;
      for (let start = 0, part = 1; start < size; start += s.partSizeBytes, part++) {
        const end = Math.min(size, start + s.partSizeBytes) - 1;
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
      const finished = await withRetries("upload", signal, async (a) =>
        call("b2_finish_large_file", () => a.b2.finishLargeFile({ fileId, partSha1Array, axiosOverride: { signal, timeout: 60_000 } })),
      );
      if (finished.data.contentLength !== size) {
        throw JobError.processing("upload", `B2 assembled ${finished.data.contentLength} bytes, expected ${size}`, true);
      }
      return { partSha1Array };
    } catch (err) {
      void cancelLarge(fileId);
      throw err;
    }
  }

  async function cancelLarge(fileId: string) {
    try {
      const a = await getAuth(AbortSignal.timeout(30_000));
      await a.b2.cancelLargeFile({ fileId, axiosOverride: { timeout: 30_000 } });
    } catch (err) {
      log.warn({ fileId, error: toB2CallError(err, "b2_cancel_large_file").message }, "b2_cancel_large_file_failed");
    }
  }

  const urlFor = (a: AuthState, key: string) => `${a.downloadUrl}/file/${encodeURIComponent(s.bucketName)}/${encodeKey(key)}`;

  return {
    kind: "b2",
    prefix: s.prefix,
    async check(signal) {
      try {
        await getAuth(signal);
      } catch (err) {
        const e = err instanceof B2CallError ? err : toB2CallError(err, "b2_authorize_account");
        throw new Error(`B2 not usable: ${e.message}`, { cause: err });
      }
    },

    async putFile({ filePath, key, contentType, signal }) {
      checkStorageKey(s.prefix, key);
      const { size } = await stat(filePath);
      if (size === 0) throw JobError.processing("upload", "Output file is empty (0 bytes)", false);
      const started = Date.now();
      log.info({ key, bytes: size, bucket: s.bucketName, large: size > s.largeFileThresholdBytes }, "b2_upload_start");
      let sha1: string | null = null;
      if (size > s.largeFileThresholdBytes) {
        await uploadLarge(filePath, key, size, contentType, signal);
      } else {
        ({ sha1 } = await uploadSmall({ key, size, contentType, signal, body: () => fileBody(filePath, size) }));
      }
      const a = await getAuth(signal);
      log.info({ key, bytes: size, seconds: (Date.now() - started) / 1000 }, "b2_upload_success");
      return { key, url: urlFor(a, key), bytes: size, sha1 } satisfies StoredObject;
    },

    async putJson({ key, value, signal }) {
      checkStorageKey(s.prefix, key);
      const buf = Buffer.from(JSON.stringify(value, null, 2));
      const { a, sha1 } = await uploadSmall({ key, size: buf.length, contentType: "application/json", signal, body: () => bufferBody(buf) });
      return { key, url: urlFor(a, key), bytes: buf.length, sha1 };
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

/** B2 echoes the SHA-1 it computed; a mismatch means the bytes it stored are not ours. */
function verify(op: string, theirs: string | undefined, ours: string, theirLength: number | undefined, ourLength: number) {
  if (theirs !== ours || theirLength !== ourLength) {
    throw new B2CallError(op, null, "sha1_mismatch", `B2 stored sha1=${theirs} length=${theirLength}, sent sha1=${ours} length=${ourLength}`);
  }
}

function uploadError(what: string, e: B2CallError): JobError {
  return JobError.processing("upload", `B2 ${what} failed: ${e.message}`, e.retryable || e.code === "sha1_mismatch", {
    op: e.op,
    status_code: e.statusCode,
    b2_code: e.code,
  });
}
