import { excerpt } from "../util/excerpt.js";

/** Calls whose 401 means the upload-URL token expired, not the account's authorization. */
const UPLOAD_OPS = new Set(["b2_upload_file", "b2_upload_part"]);

/**
 * One failed B2 call, reduced to what the retry policy needs. Built from axios errors without
 * keeping them: an axios error's `config` holds the account's Basic credentials.
 */
export class B2CallError extends Error {
  override readonly name = "B2CallError";
  constructor(
    readonly op: string,
    readonly statusCode: number | null,
    readonly code: string | null,
    message: string,
  ) {
    super(`${op}: ${statusCode === null ? "" : `HTTP ${statusCode} `}${code ? `${code} ` : ""}${message}`.trim());
  }

  /** Network errors, 408, 429, 5xx, expired tokens and checksum mismatches may succeed on a fresh attempt. */
  get retryable(): boolean {
    if (this.code === "sha1_mismatch") return true;
    if (this.statusCode === null) return this.code !== "bucket_not_found";
    if (this.statusCode === 401) return this.op !== "b2_authorize_account";
    if (this.statusCode === 400 && /sha1/i.test(this.message)) return true;
    return this.statusCode === 408 || this.statusCode === 429 || this.statusCode >= 500;
  }

  get isAuthExpired(): boolean {
    return this.statusCode === 401 && this.op !== "b2_authorize_account";
  }

  /** The account token (not an upload URL's) expired: authorize again. */
  get isAccountAuthExpired(): boolean {
    return this.isAuthExpired && !UPLOAD_OPS.has(this.op);
  }
}

export function toB2CallError(err: unknown, op: string): B2CallError {
  if (err instanceof B2CallError) return err;
  const e = err as {
    message?: unknown;
    code?: unknown;
    response?: { status?: number; data?: unknown };
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
    return new B2CallError(op, status, code, message);
  }
  const code = typeof e?.code === "string" ? e.code : null;
  const message = typeof e?.message === "string" ? e.message : String(err);
  return new B2CallError(op, null, code, message);
}
