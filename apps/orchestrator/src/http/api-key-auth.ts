import { createHash, timingSafeEqual } from "node:crypto";
import { HEADERS, type RouteAuth } from "@fleet/contract";
import type { FastifyRequest, onRequestHookHandler } from "fastify";
import { ApiError } from "./api-error.js";

/** Digests have one length, so the comparison time says nothing about the key's length either. */
function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/**
 * onRequest hooks per route auth kind. They run before the body is parsed, so an unauthenticated
 * caller learns nothing about what a valid body looks like.
 */
export function createApiKeyAuth(keys: { internalApiKey: string; publicApiKeys: readonly string[] }) {
  const internal = digest(keys.internalApiKey);
  const publics = keys.publicApiKeys.map(digest);

  const matches = (given: string | undefined, accepted: readonly Buffer[]): boolean => {
    if (given === undefined) return false;
    const d = digest(given);
    // Compare against every key, without stopping early.
    return accepted.reduce((found, key) => timingSafeEqual(d, key) || found, false);
  };

  const unauthorized = (message: string) => new ApiError("unauthorized", message);

  const internalHook: onRequestHookHandler = (request, _reply, done) => {
    if (!matches(header(request, HEADERS.internalApiKey), [internal])) {
      return done(unauthorized(`missing or wrong ${HEADERS.internalApiKey}`));
    }
    done();
  };
  const publicHook: onRequestHookHandler = (request, _reply, done) => {
    if (matches(header(request, HEADERS.apiKey), publics)) return done();
    if (matches(header(request, HEADERS.internalApiKey), [internal])) return done();
    done(unauthorized(`missing or wrong ${HEADERS.apiKey}`));
  };

  return {
    hookFor(auth: RouteAuth): onRequestHookHandler[] {
      if (auth === "internal") return [internalHook];
      if (auth === "public") return [publicHook];
      return [];
    },
  };
}

export type ApiKeyAuth = ReturnType<typeof createApiKeyAuth>;
