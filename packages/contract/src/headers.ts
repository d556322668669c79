/** Header names on the wire. HTTP header names are case-insensitive; these are the canonical spellings. */
export const HEADERS = {
  /** Shared secret of the worker API; also accepted on the public API for clients of the original. */
  internalApiKey: "x-internal-api-key",
  /** Public API key: one client's key (`fleet keys create`, or an entry of PUBLIC_API_KEYS). */
  apiKey: "x-api-key",
  /** `Bearer fw_...`: a per-worker token (`fleet workers enroll`) on the worker API. */
  authorization: "authorization",
  /** Makes POST /v1/avatar/jobs safe to retry: the same key returns the same job. */
  idempotencyKey: "idempotency-key",
  /** Echoed on every response and in every error body. */
  requestId: "x-request-id",
  /** `t=<unix seconds>,v1=<hex hmac-sha256 of "<t>.<body>">` on webhook deliveries. */
  webhookSignature: "x-fleet-signature",
  /** Event name of a webhook delivery, e.g. `job.succeeded`. */
  webhookEvent: "x-fleet-event",
} as const;
