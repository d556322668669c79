import { describe, expect, it } from "vitest";
import { B2CallError, toB2CallError } from "./b2-call-error.js";

/** An axios-shaped failure with B2's error body, as backblaze-b2 rejects. */
function b2Reply(status: number, code: string, message: string, headers: Record<string, string> = {}) {
  return { message: `Request failed with status code ${status}`, response: { status, data: { status, code, message }, headers } };
}

describe("B2CallError", () => {
  it.each([
    // op, status, code, retryable, token refused, configuration
    ["b2_upload_file", 400, "bad_request", true, false, false],
    ["b2_upload_part", 400, "bad_request", true, false, false],
    ["b2_upload_file", 400, "auth_token_limit", true, false, false],
    ["b2_finish_large_file", 400, "bad_request", false, false, false],
    ["b2_get_upload_url", 401, "expired_auth_token", true, true, false],
    ["b2_get_upload_url", 401, "bad_auth_token", true, true, false],
    ["b2_upload_file", 401, "expired_auth_token", true, true, false],
    ["b2_get_upload_url", 401, "unauthorized", false, false, true],
    ["b2_authorize_account", 401, "unauthorized", false, false, true],
    ["b2_authorize_account", 401, "bad_auth_token", false, false, true],
    ["b2_upload_file", 503, "service_unavailable", true, false, false],
    ["b2_get_upload_url", 429, "too_many_requests", true, false, false],
    ["b2_upload_file", 408, "request_timeout", true, false, false],
    ["b2_start_large_file", 403, "storage_cap_exceeded", false, false, false],
  ] as const)("%s %i %s: retryable=%s, token refused=%s, configuration=%s", (op, status, code, retryable, tokenRejected, configuration) => {
    const e = toB2CallError(b2Reply(status, code, "whatever B2 says today"), op);
    expect([e.retryable, e.tokenRejected, e.isConfiguration]).toEqual([retryable, tokenRejected, configuration]);
  });

  it("decides on the code, not the message: B2's checksum wording and ours get the same answer", () => {
    const real = toB2CallError(b2Reply(400, "bad_request", "Checksum did not match data received"), "b2_upload_file");
    const other = toB2CallError(b2Reply(400, "bad_request", "Sha1 did not match"), "b2_upload_file");
    expect(real.retryable).toBe(true);
    expect(other.retryable).toBe(true);
  });

  it("renews the account token only for refusals of account calls, not of upload URLs", () => {
    expect(toB2CallError(b2Reply(401, "expired_auth_token", ""), "b2_get_upload_url").isAccountTokenRejected).toBe(true);
    expect(toB2CallError(b2Reply(401, "expired_auth_token", ""), "b2_upload_part").isAccountTokenRejected).toBe(false);
  });

  it("reads Retry-After in seconds or as a date, and waits at least the backoff and at most a minute", () => {
    const secs = toB2CallError(b2Reply(429, "too_many_requests", "", { "retry-after": "3" }), "b2_get_upload_url");
    expect(secs.retryAfterMs).toBe(3000);
    expect(secs.delayMs(500)).toBe(3000);
    expect(secs.delayMs(8000)).toBe(8000);
    const date = toB2CallError(b2Reply(503, "service_unavailable", "", { "retry-after": new Date(Date.now() + 3_600_000).toUTCString() }), "b2_upload_file");
    expect(date.delayMs(500)).toBe(60_000);
    expect(toB2CallError(b2Reply(503, "service_unavailable", ""), "b2_upload_file").delayMs(700)).toBe(700);
  });

  it("keeps our own codes apart: sha1_mismatch retries, misconfigured does not", () => {
    expect(new B2CallError("b2_upload_file", null, "sha1_mismatch", "").retryable).toBe(true);
    const mis = new B2CallError("b2_authorize_account", null, "misconfigured", "");
    expect([mis.retryable, mis.isConfiguration]).toEqual([false, true]);
    expect(toB2CallError(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), "b2_upload_part").retryable).toBe(true);
  });
});
