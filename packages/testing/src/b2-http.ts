import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { B2Store } from "./b2-store.js";

/** The B2 operations the test server answers, named as in B2's API minus the `b2_` prefix. */
export const B2_OPS = [
  "authorize",
  "list_buckets",
  "get_upload_url",
  "upload",
  "start_large_file",
  "get_upload_part_url",
  "upload_part",
  "finish_large_file",
  "cancel_large_file",
  "list_parts",
  "list_unfinished_large_files",
  "list_file_names",
  "list_file_versions",
  "get_file_info",
  "get_download_authorization",
  "delete_file_version",
  "download",
] as const;
export type B2Op = (typeof B2_OPS)[number];

/** B2 error body: `{status, code, message}`. */
export class B2HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

type TokenTarget =
  | { kind: "account" }
  | { kind: "upload"; bucketId: string }
  | { kind: "part"; fileId: string }
  /** b2_get_download_authorization: names starting with `prefix`, until `expiresAt`. */
  | { kind: "download"; bucketId: string; prefix: string; expiresAt: number };

/** The capabilities B2 gives a "Read and Write" key created in its console. */
export const ALL_CAPABILITIES = ["listBuckets", "listFiles", "readFiles", "shareFiles", "writeFiles", "deleteFiles"] as const;

/** Auth, upload and download tokens; `expireAll` turns every current auth and upload token into a 401 expired_auth_token. */
export class TokenRegistry {
  private readonly tokens = new Map<string, { target: TokenTarget; expired: boolean }>();
  /** Upload and part tokens with a request in flight: B2 allows one upload per token at a time. */
  private readonly uploading = new Set<string>();

  issue(target: TokenTarget): string {
    const prefix = target.kind === "account" ? "4_" : target.kind === "download" ? "3_" : "2_";
    const token = `${prefix}${randomBytes(24).toString("base64url")}`;
    this.tokens.set(token, { target, expired: false });
    return token;
  }

  expireAll(): void {
    // A download authorization lives its own validDurationInSeconds (up to a week), whatever
    // becomes of the account token that asked for it: links handed to clients keep working.
    for (const t of this.tokens.values()) if (t.target.kind !== "download") t.expired = true;
  }

  /** Marks an upload token busy for one request; a second concurrent request is B2's auth_token_limit. */
  beginUpload(token: string): () => void {
    if (this.uploading.has(token)) throw new B2HttpError(400, "auth_token_limit", `more than one upload using auth token ${token}`);
    this.uploading.add(token);
    return () => void this.uploading.delete(token);
  }

  /** A download token from b2_get_download_authorization that opens `fileName`, or null. */
  downloadGrant(token: string | undefined, bucketId: string, fileName: string): "ok" | "expired" | "other" | null {
    const entry = token ? this.tokens.get(token) : undefined;
    if (!entry || entry.target.kind !== "download") return null;
    const t = entry.target;
    if (t.bucketId !== bucketId || !fileName.startsWith(t.prefix)) return "other";
    return Date.now() >= t.expiresAt || entry.expired ? "expired" : "ok";
  }

  /** Throws the B2 error a wrong, mismatched or expired token gets. */
  check(token: string | undefined, want: TokenTarget): void {
    if (!token) throw new B2HttpError(401, "bad_auth_token", "Missing Authorization header");
    const entry = this.tokens.get(token);
    if (!entry) throw new B2HttpError(401, "bad_auth_token", "Invalid authorization token");
    const t = entry.target;
    const matches =
      t.kind === want.kind &&
      (t.kind !== "upload" || want.kind !== "upload" || t.bucketId === want.bucketId) &&
      (t.kind !== "part" || want.kind !== "part" || t.fileId === want.fileId);
    if (!matches) throw new B2HttpError(401, "bad_auth_token", "Invalid authorization token for this URL");
    if (entry.expired) throw new B2HttpError(401, "expired_auth_token", "Authorization token has expired");
  }
}

export interface B2State {
  url: string;
  accountId: string;
  keyId: string;
  appKey: string;
  bucketId: string;
  bucketName: string;
  bucketType: "allPublic" | "allPrivate";
  /** Like a production key limited to one bucket: listing must name that bucket. */
  restrictedToBucket: boolean;
  /** The key's capabilities; a call needing one it lacks answers 401 unauthorized. */
  capabilities: readonly string[];
  /** The key's name prefix: names outside it answer 401 unauthorized. */
  namePrefix: string | null;
  recommendedPartSize: number;
  absoluteMinimumPartSize: number;
  store: B2Store;
  tokens: TokenRegistry;
}

/** B2 answers 401 unauthorized when the key lacks the capability a call needs. */
export function requireCapability(state: B2State, capability: string): void {
  if (!state.capabilities.includes(capability)) {
    throw new B2HttpError(401, "unauthorized", `application key does not have the ${capability} capability`);
  }
}

/** B2 answers 401 unauthorized for a file name (or listing prefix) outside the key's name prefix. */
export function requireNameAllowed(state: B2State, name: string): void {
  if (state.namePrefix !== null && !name.startsWith(state.namePrefix)) {
    throw new B2HttpError(401, "unauthorized", `application key is restricted to names starting with ${state.namePrefix}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json;charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "max-age=0, no-cache, no-store",
    ...headers,
  });
  res.end(text);
}

export function sendB2Error(res: ServerResponse, err: B2HttpError): void {
  sendJson(res, err.status, { status: err.status, code: err.code, message: err.message }, err.headers);
}

/**
 * Reads and discards the rest of a request body before answering, so a client that is still
 * sending (a big upload refused early) reads our error instead of an EPIPE/ECONNRESET.
 */
export async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  await new Promise<void>((resolve) => {
    req.on("end", resolve);
    req.on("close", resolve);
    req.on("error", () => resolve());
    req.resume();
  });
}

export async function readJson(req: IncomingMessage, limit = 1 << 20): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new B2HttpError(400, "bad_request", "request body too large");
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through to the B2-style error
  }
  throw new B2HttpError(400, "bad_request", "request body is not a JSON object");
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** X-Bz-Info-* headers, URL-decoded, names lowercased as B2 stores them. */
export function infoHeaders(req: IncomingMessage): Record<string, string> {
  const info: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (!k.startsWith("x-bz-info-") || v === undefined) continue;
    const raw = Array.isArray(v) ? (v[0] ?? "") : v;
    info[k.slice("x-bz-info-".length)] = decodeOrThrow(raw, k);
  }
  return info;
}

export function decodeOrThrow(value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new B2HttpError(400, "bad_request", `${what} is not properly URL-encoded`);
  }
}

export function requireString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== "string" || v === "") throw new B2HttpError(400, "bad_request", `required field ${field} is missing`);
  return v;
}

/** Error codes B2 uses for each injectable status; `code` picks another (a 401 `unauthorized`, say). */
export function faultError(status: number, message?: string, code?: string, retryAfterSec = 1): B2HttpError {
  if (code !== undefined) return new B2HttpError(status, code, message ?? `injected ${status} ${code}`);
  switch (status) {
    case 503:
      return new B2HttpError(503, "service_unavailable", message ?? "c001_v0001001_t0042 no tomes available", { "Retry-After": String(retryAfterSec) });
    case 429:
      return new B2HttpError(429, "too_many_requests", message ?? "too many requests", { "Retry-After": String(retryAfterSec) });
    case 500:
      return new B2HttpError(500, "internal_error", message ?? "internal server error (injected)");
    case 408:
      return new B2HttpError(408, "request_timeout", message ?? "The service timed out reading the uploaded file");
    case 401:
      return new B2HttpError(401, "expired_auth_token", message ?? "Authorization token has expired");
    default:
      return new B2HttpError(status, status >= 500 ? "internal_error" : "bad_request", message ?? `injected ${status}`);
  }
}
