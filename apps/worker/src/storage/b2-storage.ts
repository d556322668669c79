import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import type { B2FileInfo } from "backblaze-b2";
import type { B2Settings } from "../config.js";
import type { Logger } from "../logger.js";
import { JobError } from "../errors/job-error.js";
import { checkStorageKey, encodeKey, type OutputStorage, type StoredObject } from "./output-storage.js";
import type { B2Account } from "./b2-account.js";
import { toB2CallError } from "./b2-call-error.js";
import { transferTimeoutMs, uploadLargeFile, verifyEcho } from "./b2-large-file.js";
import { call, createB2Session } from "./b2-session.js";
import { cancelStaleLargeFiles } from "./b2-stale-large-files.js";
import { bufferBody, fileBody, type UploadBody } from "./upload-body.js";

/**
 * Outputs to Backblaze B2 through `backblaze-b2` (B2's native API, v2). Files above the large-file
 * threshold go up in parts (b2-large-file.ts); the rest in one b2_upload_file with the SHA-1 as a
 * trailer, so the file is read once, and the SHA-1 B2 echoes is compared with ours. Retries follow
 * b2-session.ts. B2 keeps every upload of a name as a version, so a retry after a reply that may
 * have been lost first looks for what the lost call did: one putFile leaves one version of its key.
 */
export function createB2Storage(opts: { settings: B2Settings; log: Logger; retryBaseMs?: number; version?: string | null }): OutputStorage {
  const s = opts.settings;
  const log = opts.log;
  const session = createB2Session({
    settings: s,
    log,
    retryBaseMs: opts.retryBaseMs ?? 1_000,
    userAgent: `fleet-worker/${opts.version ?? packageVersion()} backblaze-b2/1.7.1 node/${process.versions.node}`,
  });
  let started = false;

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
    return session.withRetries("upload", o.signal, async (a) => {
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
      verifyEcho("b2_upload_file", res.data.contentSha1, body.sha1(), res.data.contentLength, o.size);
      return { size: res.data.contentLength, sha1: body.sha1() };
    });
  }

  /**
   * The output's link. Public bucket: the plain download-by-name URL, good forever. Private
   * bucket: the same URL with a download authorization for exactly this key, good for
   * B2_DOWNLOAD_URL_TTL_SEC (B2 allows at most 7 days).
   */
  async function urlFor(key: string, signal: AbortSignal): Promise<string> {
    return session.withRetries("download authorization", signal, async (a) => {
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
        userAgent: session.userAgent,
        signal,
        log,
      });
      log.info({ ...r, olderThanHours: s.cancelUnfinishedAfterMs / 3600_000 }, "b2_stale_large_files_checked");
    } catch (err) {
      // Stale parts cost storage, not correctness: never a reason to refuse work.
      log.warn({ err: toB2CallError(err, "b2_list_unfinished_large_files") }, "b2_stale_large_files_failed");
    }
  }

  return {
    kind: "b2",
    prefix: s.prefix,
    async check(signal) {
      let a: B2Account;
      try {
        a = await session.getAuth(signal);
      } catch (err) {
        const e = toB2CallError(err, "b2_authorize_account");
        throw new Error(`B2 not usable: ${e.isConfiguration ? "configuration: " : ""}${e.message}`, { cause: err });
      }
      if (!started) {
        started = true;
        await onStart(a, signal);
      }
    },

    async putFile({ filePath, key, contentType, signal }) {
      checkStorageKey(s.prefix, key);
      const { size } = await stat(filePath);
      if (size === 0) throw JobError.processing("upload", "Output file is empty (0 bytes)", false);
      const t0 = Date.now();
      const large = size > s.largeFileThresholdBytes;
      log.info({ key, bytes: size, bucket: s.bucketName, large }, "b2_upload_start");
      const sha1 = large
        ? await uploadLargeFile(session, { filePath, key, size, contentType, partSizeBytes: s.partSizeBytes, signal })
        : (await uploadSmall({ key, size, contentType, signal, body: () => fileBody(filePath, size) })).sha1;
      const url = await urlFor(key, signal);
      log.info({ key, bytes: size, seconds: (Date.now() - t0) / 1000 }, "b2_upload_success");
      return { key, url, bytes: size, sha1 } satisfies StoredObject;
    },

    async putJson({ key, value, signal }) {
      checkStorageKey(s.prefix, key);
      const buf = Buffer.from(JSON.stringify(value, null, 2));
      const { sha1 } = await uploadSmall({ key, size: buf.length, contentType: "application/json", signal, body: () => bufferBody(buf) });
      return { key, url: await urlFor(key, signal), bytes: buf.length, sha1 };
    },

    async close() {},
  };
}

/** The SHA-1 of a body that went out in full, or null when it broke off (B2 cannot have stored it). */
function sentSha1(body: UploadBody): string | null {
  try {
    return body.sha1();
  } catch {
    return null;
  }
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
