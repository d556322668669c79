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
  "list_file_names",
  "get_file_info",
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

type TokenTarget = { kind: "account" } | { kind: "upload"; bucketId: string } | { kind: "part"; fileId: string };

/** Auth and upload tokens; `expireAll` turns every current one into a 401 expired_auth_token. */
export class TokenRegistry {
  private readonly tokens = new Map<string, { target: TokenTarget; expired: boolean }>();

  issue(target: TokenTarget): string {
    const prefix = target.kind === "account" ? "4_" : "2_";
    const token = `${prefix}${randomBytes(24).toString("base64url")}`;
    this.tokens.set(token, { target, expired: false });
    return token;
  }

  expireAll(): void {
    for (const t of this.tokens.values()) t.expired = true;
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
  recommendedPartSize: number;
  absoluteMinimumPartSize: number;
  store: B2Store;
  tokens: TokenRegistry;
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

/** Error codes B2 uses for each injectable status. */
export function faultError(status: number, message?: string): B2HttpError {
  switch (status) {
    case 503:
      return new B2HttpError(503, "service_unavailable", message ?? "c001_v0001001_t0042 no tomes available", { "Retry-After": "1" });
    case 429:
      return new B2HttpError(429, "too_many_requests", message ?? "too many requests", { "Retry-After": "1" });
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
