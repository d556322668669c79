import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Transform, type Readable } from "node:stream";

/** Read size: small chunks keep the garbage between collections small (measured in bench/). */
const CHUNK = 64 * 1024;
const TRAILER = 40;

/** One attempt's request body for b2_upload_file / b2_upload_part. */
export interface UploadBody {
  data: Buffer | Readable;
  /** Bytes on the wire, the SHA-1 trailer included. */
  contentLength: number;
  /** X-Bz-Content-Sha1: the digest, or `hex_digits_at_end`. */
  hash: string;
  /** The content's SHA-1, known once the body has been sent. */
  sha1(): string;
}

export function bufferBody(buf: Buffer): UploadBody {
  const sha1 = createHash("sha1").update(buf).digest("hex");
  return { data: buf, contentLength: buf.length, hash: sha1, sha1: () => sha1 };
}

/**
 * A file (or byte range) streamed from disk with its SHA-1 appended as 40 hex digits, as B2's
 * `hex_digits_at_end` allows: one read of the file instead of a hashing pass and a sending pass,
 * which halves both the disk reads and the memory churn of a large upload.
 */
export function fileBody(filePath: string, size: number, range?: { start: number; end: number }): UploadBody {
  const hash = createHash("sha1");
  let digest: string | null = null;
  const source = createReadStream(filePath, { ...range, highWaterMark: CHUNK });
  const data = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      digest = hash.digest("hex");
      cb(null, Buffer.from(digest, "latin1"));
    },
  });
  source.on("error", (err) => data.destroy(err));
  data.on("close", () => source.destroy());
  source.pipe(data);
  return {
    data,
    contentLength: size + TRAILER,
    hash: "hex_digits_at_end",
    sha1: () => {
      if (digest === null) throw new Error("body not sent completely: no SHA-1 yet");
      return digest;
    },
  };
}

/**
 * The SHA-1 of a whole file, read once before a large-file upload: B2 takes `large_file_sha1`
 * only in b2_start_large_file, before any part is sent, and without it B2 reports "none" for the
 * file and a download cannot be checked.
 */
export async function fileSha1(filePath: string): Promise<string> {
  const hash = createHash("sha1");
  for await (const chunk of createReadStream(filePath, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest("hex");
}
