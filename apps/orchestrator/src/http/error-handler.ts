import type { ErrorBody, ErrorCode } from "@fleet/contract";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
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
 * The one error handler. 4xx carry a stable code and a useful message; anything unexpected is a
 * 500 whose text is replaced (it may hold SQL or internals) and logged with the request id.
 */
export function handleError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof ApiError) {
    return reply.status(err.statusCode).send(body(err.code, err.message, request.id, err.details));
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? "body";
    const details = err.validation.map((issue) => ({
      path: `${where}${issue.instancePath === "/" ? "" : issue.instancePath.replaceAll("/", ".")}`,
      message: issue.message ?? "invalid",
    }));
    return reply.status(400).send(body("invalid_request", `invalid ${where}`, request.id, details));
  }
  const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (mapped) {
    return reply.status(mapped === "payload_too_large" ? 413 : mapped === "unsupported_media_type" ? 415 : 400)
      .send(body(mapped, err.message, request.id));
  }
  if (err.validation) {
    return reply.status(400).send(body("invalid_request", err.message, request.id));
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    const code: ErrorCode = err.statusCode === 404 ? "not_found" : err.statusCode === 413 ? "payload_too_large" : "invalid_request";
    return reply.status(err.statusCode).send(body(code, err.message, request.id));
  }
  request.log.error({ err, method: request.method, url: request.routeOptions.url }, "request_failed");
  return reply.status(500).send(body("internal_error", "internal error; quote the request id when reporting it", request.id));
}
