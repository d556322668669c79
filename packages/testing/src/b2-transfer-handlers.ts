import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { ingestBody, parseSha1Header } from "./b2-ingest.js";
import type { IngestResult } from "./b2-ingest.js";
import type { B2State } from "./b2-http.js";
import { B2HttpError, decodeOrThrow, drain, header, infoHeaders, requireNameAllowed } from "./b2-http.js";
import { checkFileName, fileJson, resolveContentType } from "./b2-store.js";
import type { B2StoredObject } from "./b2-store.js";

const MAX_SINGLE_UPLOAD = 5_000_000_000;
const MAX_PART = 5_000_000_000;

/** Content-Length is mandatory on B2 uploads; chunked bodies are refused. */
function contentLength(req: IncomingMessage, max: number): number {
  const raw = header(req, "content-length");
  if (raw === undefined) throw new B2HttpError(400, "bad_request", "missing Content-Length header");
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new B2HttpError(400, "bad_request", `bad Content-Length: ${raw}`);
  if (n > max) throw new B2HttpError(400, "bad_request", `Content-Length ${n} exceeds maximum ${max}`);
  return n;
}

/** Streams the body to disk and checks its SHA-1 like B2: a mismatch is a 400 bad_request. */
async function receive(state: B2State, req: IncomingMessage, max: number): Promise<{ path: string; got: IngestResult; unverified: boolean }> {
  contentLength(req, max);
  const decl = parseSha1Header(header(req, "x-bz-content-sha1"));
  if (!decl) throw new B2HttpError(400, "bad_request", "missing or malformed X-Bz-Content-Sha1 header");
  const path = state.store.incomingPath();
  const got = await ingestBody(req, path, decl);
  if (decl.kind !== "do_not_verify" && got.declaredSha1 !== got.sha1) {
    await rm(path, { force: true });
    throw new B2HttpError(400, "bad_request", "Checksum did not match data received");
  }
  return { path, got, unverified: decl.kind === "do_not_verify" };
}

/** b2_upload_file: `POST {uploadUrl}` with the upload token; the token was checked by the caller. */
export async function handleUpload(state: B2State, req: IncomingMessage): Promise<Record<string, unknown>> {
  const rawName = header(req, "x-bz-file-name");
  if (!rawName) throw new B2HttpError(400, "bad_request", "missing X-Bz-File-Name header");
  const fileName = decodeOrThrow(rawName, "X-Bz-File-Name");
  const nameProblem = checkFileName(fileName);
  if (nameProblem) throw new B2HttpError(400, "bad_request", nameProblem);
  requireNameAllowed(state, fileName);
  const fileInfo = infoHeaders(req);
  const contentType = resolveContentType(header(req, "content-type"), fileName);
  const { path, got, unverified } = await receive(state, req, MAX_SINGLE_UPLOAD);
  const obj = await state.store.commitUpload(
    {
      fileId: state.store.newFileId(), fileName, bucketId: state.bucketId, size: got.size, sha1: got.sha1,
      contentSha1: unverified ? `unverified:${got.sha1}` : got.sha1, contentType, fileInfo, uploadTimestamp: Date.now(),
    },
    path,
  );
  return fileJson(state.accountId, obj);
}

/** b2_upload_part: X-Bz-Part-Number 1..10000, SHA-1 checked per part. */
export async function handleUploadPart(state: B2State, req: IncomingMessage, fileId: string): Promise<Record<string, unknown>> {
  const lf = state.store.largeFile(fileId);
  const rawPart = header(req, "x-bz-part-number");
  const partNumber = Number(rawPart);
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
    throw new B2HttpError(400, "bad_request", `bad X-Bz-Part-Number: ${rawPart ?? "(missing)"}`);
  }
  const { path, got } = await receive(state, req, MAX_PART);
  const part = await state.store.commitPart(lf, { partNumber, size: got.size, sha1: got.sha1, uploadTimestamp: Date.now() }, path);
  return {
    fileId: lf.fileId, partNumber, contentLength: part.size, contentSha1: part.sha1, contentMd5: null,
    serverSideEncryption: { algorithm: null, mode: null }, uploadTimestamp: part.uploadTimestamp,
  };
}

function parseRange(value: string | undefined, size: number): { start: number; end: number } | null | "invalid" {
  if (!value) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m) return "invalid";
  const [, a = "", b = ""] = m;
  let start: number;
  let end: number;
  if (a === "") {
    const suffix = Number(b);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start > end || start >= size) return "invalid";
  return { start, end };
}

/**
 * Download by name or id: B2's headers, Range, HEAD. A private bucket wants, in the Authorization
 * header or query parameter, an account token with readFiles or a download token from
 * b2_get_download_authorization whose prefix covers the name and whose lifetime has not run out.
 */
export async function sendObject(
  state: B2State,
  req: IncomingMessage,
  res: ServerResponse,
  obj: B2StoredObject | undefined,
  fileName: string | null,
  checkAccountToken: (token: string | undefined) => void,
): Promise<void> {
  await drain(req);
  if (state.bucketType !== "allPublic") {
    const q = new URL(req.url ?? "/", state.url).searchParams.get("Authorization");
    const token = header(req, "authorization") ?? q ?? undefined;
    const grant = state.tokens.downloadGrant(token, state.bucketId, fileName ?? obj?.fileName ?? "");
    if (grant === "expired") throw new B2HttpError(401, "expired_auth_token", "Authorization token has expired");
    if (grant === "other") throw new B2HttpError(401, "unauthorized", "the download authorization does not cover this file");
    if (grant === null) {
      checkAccountToken(token);
      if (!state.capabilities.includes("readFiles")) throw new B2HttpError(401, "unauthorized", "application key does not have the readFiles capability");
    }
  }
  if (!obj) throw new B2HttpError(404, "not_found", "File with such name does not exist.");
  const headers: Record<string, string | number> = {
    "Content-Type": obj.contentType,
    "Accept-Ranges": "bytes",
    "X-Bz-File-Name": obj.fileName.split("/").map(encodeURIComponent).join("/"),
    "X-Bz-File-Id": obj.fileId,
    "X-Bz-Content-Sha1": obj.contentSha1,
    "X-Bz-Upload-Timestamp": obj.uploadTimestamp,
  };
  for (const [k, v] of Object.entries(obj.fileInfo)) headers[`X-Bz-Info-${k}`] = encodeURIComponent(v);
  const range = parseRange(header(req, "range"), obj.size);
  if (range === "invalid") {
    throw new B2HttpError(416, "range_not_satisfiable", `bad Range for a file of ${obj.size} bytes`);
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? obj.size - 1;
  headers["Content-Length"] = Math.max(0, end - start + 1);
  if (range) headers["Content-Range"] = `bytes ${start}-${end}/${obj.size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD" || obj.size === 0) {
    res.end();
    return;
  }
  await pipeline(createReadStream(obj.path, { start, end }), res);
}

