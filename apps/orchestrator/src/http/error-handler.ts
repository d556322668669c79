import { ERROR_STATUS, HEADERS, type ErrorBody, type ErrorCode } from "@fleet/contract";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { causeChain } from "../db/sql-state.js";
import { ApiError } from "./api-error.js";

/** Fastify's own 4xx errors, mapped to the closed list of codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "payload_too_large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "invalid_request",
  FST_ERR_CTP_EMPTY_JSON_BODY: "invalid_request",
  FST_ERR_CTP_INVALID_JSON_BODY: "invalid_request",
  FST_ERR_BAD_URL: "invalid_request",
};

function body(code: ErrorCode, message: string, requestId: string, details?: ErrorBody["error"]["details"]): ErrorBody {
  return { error: { code, message, request_id: requestId, ...(details ? { details } : {}) } };
}

/**
 * Errors that mean "the database is not reachable right now" (connection refused or reset, the
 * server shutting down or starting up): the request may succeed if retried, so they are a 503
 * `service_unavailable`, not a 500 that pages someone for a bug.
 */
const DB_UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"]);

function isDatabaseUnavailable(err: unknown): boolean {
  for (const e of causeChain(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && DB_UNAVAILABLE_CODES.has(code)) return true;
    if (/Connection terminated|connection timeout|Client has encountered a connection error/i.test(e.message)) return true;
  }
  return false;
}

function send(reply: FastifyReply, request: FastifyRequest, code: ErrorCode, message: string, details?: ErrorBody["error"]["details"]) {
  // Set here too: router errors (a bad %-escape, an over-long parameter) never reach the onRequest hook.
  return reply.header(HEADERS.requestId, request.id).status(ERROR_STATUS[code]).send(body(code, message, request.id, details));
}

/**
 * The one error handler. 4xx carry a stable code and a useful message, with the status the
 * contract pairs with that code; anything unexpected is a 500 whose text is replaced (it may hold
 * SQL or internals) and logged with the request id.
 */
export function handleError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof ApiError) return send(reply, request, err.code, err.message, err.details);
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? "body";
    const details = err.validation.map((issue) => ({
      path: `${where}${issue.instancePath === "/" ? "" : issue.instancePath.replaceAll("/", ".")}`,
      message: issue.message ?? "invalid",
    }));
    return send(reply, request, "invalid_request", `invalid ${where}`, details);
  }
  const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (mapped) return send(reply, request, mapped, err.message);
  if (err.validation) return send(reply, request, "invalid_request", err.message);
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    const code: ErrorCode = err.statusCode === 404 ? "not_found" : err.statusCode === 413 ? "payload_too_large" : "invalid_request";
    return send(reply, request, code, err.message);
  }
  if (isDatabaseUnavailable(err)) {
    request.log.warn({ err, method: request.method, url: request.routeOptions.url }, "request_database_unavailable");
    return send(reply.header("retry-after", "2"), request, "service_unavailable", "the database is unreachable; retry shortly");
  }
  request.log.error({ err, method: request.method, url: request.routeOptions.url }, "request_failed");
  return send(reply, request, "internal_error", "internal error; quote the request id when reporting it");
}
