import { createHash, timingSafeEqual } from "node:crypto";
import { HEADERS, WORKER_TOKEN_PREFIX, type RouteDef } from "@fleet/contract";
import type { FastifyRequest, onRequestAsyncHookHandler } from "fastify";
import type { CredentialStore } from "../auth/credential-store.js";
import { INTERNAL_PRINCIPAL, type Principal } from "../auth/principal.js";
import { ApiError } from "./api-error.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the route's auth hook; routes without auth leave it null. */
    principal: Principal | null;
  }
}

/** Digests have one length, so the comparison time says nothing about the key's length either. */
function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function bearerToken(request: FastifyRequest): string | undefined {
  const value = header(request, HEADERS.authorization);
  const match = value === undefined ? null : /^Bearer ([\x21-\x7e]{1,200})$/.exec(value);
  return match?.[1];
}

/** The principal a route handler acts for (routes with auth always have one). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new Error(`route ${request.routeOptions.url ?? "?"} has no auth hook`);
  return request.principal;
}

/**
 * onRequest hooks per route: they run before the body is parsed, so an unauthenticated caller
 * learns nothing about what a valid body looks like. The shared internal key is compared in
 * constant time; client keys and worker tokens are looked up by their hash.
 */
export function createApiKeyAuth(options: { internalApiKey: string; credentials: CredentialStore }) {
  const internal = digest(options.internalApiKey);
  const { credentials } = options;
  const isInternalKey = (given: string | undefined): boolean => given !== undefined && timingSafeEqual(digest(given), internal);
  const unauthorized = (message: string) => new ApiError("unauthorized", message);

  const internalHook: onRequestAsyncHookHandler = (request) => {
    if (!isInternalKey(header(request, HEADERS.internalApiKey))) return Promise.reject(unauthorized(`missing or wrong ${HEADERS.internalApiKey}`));
    request.principal = INTERNAL_PRINCIPAL;
    return Promise.resolve();
  };

  const workerHook: onRequestAsyncHookHandler = async (request) => {
    if (isInternalKey(header(request, HEADERS.internalApiKey))) {
      request.principal = INTERNAL_PRINCIPAL;
      return;
    }
    const token = bearerToken(request);
    const workerId = token?.startsWith(WORKER_TOKEN_PREFIX) ? await credentials.workerByToken(token) : null;
    if (workerId === null) throw unauthorized(`missing or wrong ${HEADERS.internalApiKey} or worker token (Authorization: Bearer ${WORKER_TOKEN_PREFIX}...)`);
    request.principal = { kind: "worker", workerId };
  };

  const publicHook: onRequestAsyncHookHandler = async (request) => {
    const key = header(request, HEADERS.apiKey);
    const owner = key === undefined ? null : await credentials.clientByKey(key);
    if (owner) {
      request.principal = { kind: "client", clientId: owner.client_id, bootstrap: owner.bootstrap };
      return;
    }
    if (isInternalKey(header(request, HEADERS.internalApiKey))) {
      request.principal = INTERNAL_PRINCIPAL;
      return;
    }
    throw unauthorized(`missing or wrong ${HEADERS.apiKey}`);
  };

  return {
    hookFor(route: Pick<RouteDef, "auth" | "workerToken">): onRequestAsyncHookHandler[] {
      if (route.auth === "internal") return [route.workerToken === true ? workerHook : internalHook];
      if (route.auth === "public") return [publicHook];
      return [];
    },
  };
}

export type ApiKeyAuth = ReturnType<typeof createApiKeyAuth>;
