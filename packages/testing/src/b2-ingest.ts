import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

/** How the client declared the SHA-1 in X-Bz-Content-Sha1. */
export type Sha1Declaration =
  | { kind: "given"; sha1: string }
  | { kind: "do_not_verify" }
  /** The last 40 bytes of the body are the hex SHA-1 of what precedes them (Content-Length includes them). */
  | { kind: "hex_digits_at_end" };

export function parseSha1Header(value: string | undefined): Sha1Declaration | null {
  if (value === undefined) return null;
  const v = value.trim().toLowerCase();
  if (v === "do_not_verify") return { kind: "do_not_verify" };
  if (v === "hex_digits_at_end") return { kind: "hex_digits_at_end" };
  // Only the three documented forms: B2 reports "unverified:<sha1>" in replies but does not take it.
  return /^[0-9a-f]{40}$/.test(v) ? { kind: "given", sha1: v } : null;
}

export interface IngestResult {
  /** Bytes of content stored (without a trailing SHA-1 when hex_digits_at_end). */
  size: number;
  /** SHA-1 of the stored bytes, computed while streaming. */
  sha1: string;
  /** The SHA-1 the client declared, or null for do_not_verify. */
  declaredSha1: string | null;
}

const TRAILER = 40;

/**
 * Streams a request body to `dest` through a SHA-1 hash, never holding more than a chunk in
 * memory (a 1 GiB upload must not live in the test process). Removes `dest` when the stream
 * fails (client gone mid-body), so an interrupted upload leaves nothing behind.
 */
export async function ingestBody(body: Readable, dest: string, decl: Sha1Declaration): Promise<IngestResult> {
  const hash = createHash("sha1");
  let size = 0;
  let held = Buffer.alloc(0);
  const atEnd = decl.kind === "hex_digits_at_end";
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      let data = chunk;
      if (atEnd) {
        // Hold back the last 40 bytes seen so far: they may be the trailer.
        const joined = held.length > 0 ? Buffer.concat([held, chunk]) : chunk;
        const cut = Math.max(0, joined.length - TRAILER);
        data = joined.subarray(0, cut);
        held = Buffer.from(joined.subarray(cut));
      }
      hash.update(data);
      size += data.length;
      done(null, data);
    },
  });
  try {
    await pipeline(body, hasher, createWriteStream(dest));
  } catch (err) {
    await rm(dest, { force: true });
    throw err;
  }
  let declaredSha1: string | null = null;
  if (decl.kind === "given") declaredSha1 = decl.sha1;
  if (atEnd) declaredSha1 = held.length === TRAILER ? held.toString("latin1").toLowerCase() : "";
  return { size, sha1: hash.digest("hex"), declaredSha1 };
}
