import { excerpt } from "../util/excerpt.js";

/** Calls whose 401 means the upload-URL token was refused, not the account's authorization. */
const UPLOAD_OPS = new Set(["b2_upload_file", "b2_upload_part"]);

/**
 * The 401 codes that mean "get a new token": an expired one, or one B2 no longer knows (its side
 * restarted). Any other 401 (`unauthorized`) is the key's configuration, which a new token of the
 * same key does not change.
 */
const TOKEN_CODES = new Set(["expired_auth_token", "bad_auth_token"]);

/** A Retry-After above this is not worth holding a finished job for: fail the attempt instead. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * One failed B2 call, reduced to what the retry policy needs. Built from axios errors without
 * keeping them: an axios error's `config` holds the account's Basic credentials. Everything is
 * decided on B2's `code` and the HTTP status, never on the message text, which B2 does not promise.
 *
 * Codes of our own (no HTTP status): `sha1_mismatch` (B2 echoed other bytes than we sent),
 * `misconfigured` (the key, bucket or prefix cannot work), `bucket_not_found`.
 */
export class B2CallError extends Error {
  override readonly name = "B2CallError";
  constructor(
    readonly op: string,
    readonly statusCode: number | null,
    readonly code: string | null,
    message: string,
    /** B2's Retry-After (429, 503), in milliseconds. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(`${op}: ${statusCode === null ? "" : `HTTP ${statusCode} `}${code ? `${code} ` : ""}${message}`.trim());
  }

  /**
   * Network errors, 408, 429, 5xx, refused tokens, and on the upload calls a 400 (B2 answers a
   * checksum mismatch with `bad_request`) or `auth_token_limit` may succeed on a fresh attempt.
   */
  get retryable(): boolean {
    if (this.code === "sha1_mismatch") return true;
    if (this.statusCode === null) return this.code !== "bucket_not_found" && this.code !== "misconfigured";
    if (this.statusCode === 401) return this.tokenRejected;
    if (this.statusCode === 400 && UPLOAD_OPS.has(this.op)) return this.code === "bad_request" || this.code === "auth_token_limit";
    return this.statusCode === 408 || this.statusCode === 429 || this.statusCode >= 500;
  }

  /** B2 refused the token (expired or unknown): a new one may work. */
  get tokenRejected(): boolean {
    return this.statusCode === 401 && this.op !== "b2_authorize_account" && TOKEN_CODES.has(this.code ?? "");
  }

  /** The account token (not an upload URL's) was refused: authorize again. */
  get isAccountTokenRejected(): boolean {
    return this.tokenRejected && !UPLOAD_OPS.has(this.op);
  }

  /** The key, bucket or prefix is wrong: no retry helps until an operator changes the configuration. */
  get isConfiguration(): boolean {
    return this.code === "misconfigured" || this.code === "bucket_not_found" || (this.statusCode === 401 && !this.tokenRejected);
  }

  /** How long to wait before the next attempt: B2's Retry-After when it gave one, else `backoffMs`. */
  delayMs(backoffMs: number): number {
    return Math.max(backoffMs, Math.min(this.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
  }
}

export function toB2CallError(err: unknown, op: string): B2CallError {
  if (err instanceof B2CallError) return err;
  const e = err as {
    message?: unknown;
    code?: unknown;
    response?: { status?: number; data?: unknown; headers?: Record<string, unknown> };
  } | null;
  const status = typeof e?.response?.status === "number" ? e.response.status : null;
  const data = e?.response?.data as { code?: unknown; message?: unknown } | string | undefined;
  if (status !== null) {
    const code = typeof data === "object" && data && typeof data.code === "string" ? data.code : null;
    const message =
      typeof data === "object" && data && typeof data.message === "string"
        ? data.message
        : typeof data === "string"
          ? excerpt(data, 300)
          : "";
    return new B2CallError(op, status, code, message, retryAfterMs(e?.response?.headers?.["retry-after"]));
  }
  const code = typeof e?.code === "string" ? e.code : null;
  const message = typeof e?.message === "string" ? e.message : String(err);
  return new B2CallError(op, null, code, message);
}

/** Retry-After is seconds or an HTTP date. */
function retryAfterMs(value: unknown): number | null {
  if (typeof value !== "string" && typeof value !== "number") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(String(value));
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
