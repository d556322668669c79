import type { B2FileInfo } from "backblaze-b2";
import { JobError } from "../errors/job-error.js";
import type { B2Account } from "./b2-account.js";
import { B2CallError, toB2CallError } from "./b2-call-error.js";
import { call, type B2Session } from "./b2-session.js";
import { fileBody, fileSha1 } from "./upload-body.js";

/** B2's large-file limits: parts of at most 5 GB (decimal), at most 10,000 of them. */
export const MAX_PART_BYTES = 5_000_000_000;
const MAX_PARTS = 10_000;

/**
 * The part size for a file: the configured one, or larger when the file would need more than
 * 10,000 parts. Null when even 5 GB parts are not enough (a file B2 cannot hold).
 */
export function partSizeFor(size: number, configured: number): number | null {
  const needed = Math.max(configured, Math.ceil(size / MAX_PARTS));
  return needed > MAX_PART_BYTES ? null : needed;
}

/**
 * One file as a B2 large file: parts read straight from disk (memory stays flat whatever the size),
 * each with its SHA-1 as a trailer, a fresh part URL after any failure, the whole file's SHA-1 as
 * `large_file_sha1`. Returns that SHA-1. On failure the large file is cancelled, unless a finish
 * may have completed it.
 */
export async function uploadLargeFile(
  session: B2Session,
  o: { filePath: string; key: string; size: number; contentType: string; partSizeBytes: number; signal: AbortSignal },
): Promise<string> {
  const { log } = session;
  const { filePath, key, size, signal } = o;
  const partSize = partSizeFor(size, o.partSizeBytes);
  if (partSize === null) {
    throw JobError.processing("upload", `Output of ${size} bytes exceeds B2's largest file (${MAX_PARTS} parts of ${MAX_PART_BYTES} bytes)`, false);
  }
  const wholeSha1 = await fileSha1(filePath);
  const fileId = await session.withRetries("upload", signal, async (a) => {
    const res = await call("b2_start_large_file", () =>
      a.b2.startLargeFile({
        bucketId: a.bucketId,
        fileName: key,
        contentType: o.contentType,
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
      const sha1 = await session.withRetries("upload", signal, async (a) => {
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
          verifyEcho("b2_upload_part", res.data.contentSha1, body.sha1(), res.data.contentLength, length);
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
    const finished = await session.withRetries("upload", signal, async (a) => {
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
    void cancelLargeFile(session, fileId, finishSent);
    throw err;
  }
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

/** Cancels an unfinished large file; never one a finish may have completed. */
async function cancelLargeFile(session: B2Session, fileId: string, finishSent: boolean): Promise<void> {
  try {
    const a = await session.getAuth(AbortSignal.timeout(30_000));
    if (finishSent && (await finishedFile(a, fileId, AbortSignal.timeout(30_000)))) {
      session.log.warn({ fileId }, "b2_large_file_kept_finished");
      return;
    }
    await a.b2.cancelLargeFile({ fileId, axiosOverride: { timeout: 30_000 } });
  } catch (err) {
    session.log.warn({ fileId, err: toB2CallError(err, "b2_cancel_large_file") }, "b2_cancel_large_file_failed");
  }
}

/** A transfer may take a minute to start plus one second per 256 KiB: generous, but never forever. */
export function transferTimeoutMs(bytes: number): number {
  return 60_000 + Math.ceil(bytes / (256 * 1024)) * 1000;
}

/** B2 echoes the SHA-1 it computed; a mismatch means the bytes it stored are not ours. */
export function verifyEcho(op: string, theirs: string | undefined, ours: string, theirLength: number | undefined, ourLength: number): void {
  if (theirs !== ours || theirLength !== ourLength) {
    throw new B2CallError(op, null, "sha1_mismatch", `B2 stored sha1=${theirs} length=${theirLength}, sent sha1=${ours} length=${ourLength}`);
  }
}
