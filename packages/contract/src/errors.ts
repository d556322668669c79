import { z } from "zod";

/**
 * The closed list of error codes. Clients switch on `code`, never on `message`.
 * Adding a code is a contract change: add it here and to ERROR_STATUS.
 */
export const ErrorCode = z.enum([
  "unauthorized",
  "worker_identity_mismatch",
  "invalid_request",
  "url_not_allowed",
  "output_url_required",
  "not_found",
  "lease_lost",
  "idempotency_conflict",
  "job_finished",
  "payload_too_large",
  "unsupported_media_type",
  "internal_error",
  "service_unavailable",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Exhaustive: the compiler refuses a code without a status. */
export const ERROR_STATUS = {
  unauthorized: 401,
  /** A per-worker token acting as another worker, or on an attempt another worker holds. */
  worker_identity_mismatch: 403,
  invalid_request: 400,
  url_not_allowed: 422,
  output_url_required: 422,
  not_found: 404,
  lease_lost: 409,
  idempotency_conflict: 409,
  job_finished: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal_error: 500,
  service_unavailable: 503,
} as const satisfies Record<ErrorCode, number>;

/** The one error body every Fleet HTTP error uses. */
export const ErrorBody = z.object({
  error: z.object({
    code: ErrorCode,
    message: z.string(),
    request_id: z.string(),
    /** Field-level problems for `invalid_request`: path and message per issue. */
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
