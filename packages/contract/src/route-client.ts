import type { z } from "zod";
import { ErrorBody } from "./errors.js";
import { HEADERS } from "./headers.js";
import { pathFor, routes, type RouteName } from "./routes.js";

/**
 * The one request layer over the route table: the CLI, the worker, the test helpers and the bench
 * build, send and read every orchestrator call here. It knows the table (method, path, auth, reply
 * schemas) and nothing of any app; the caller brings the connection (an undici Pool, Agent or a
 * Fastify `inject` adapter) and decides what an outcome means to it (throw, retry, drop).
 * Web-standard globals only, so the contract stays free of an HTTP library.
 */

type Route<N extends RouteName> = (typeof routes)[N];
type Responses<N extends RouteName> = Route<N>["responses"];
type SuccessStatus<N extends RouteName> = Extract<keyof Responses<N>, 200 | 201>;

/** The parsed body of a route's 2xx response. */
export type RouteResult<N extends RouteName> = z.output<Responses<N>[SuccessStatus<N>] & z.ZodType>;

export interface RouteInput {
  params?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The keys a caller holds; each route takes the one its `auth` names. */
export interface RouteCredentials {
  /** The worker API's shared key; the public API takes it too (clients of the original send it). */
  internalApiKey?: string | undefined;
  /** One client's public key. */
  apiKey?: string | undefined;
  /** A per-worker token; used on the routes marked `workerToken` instead of the shared key. */
  workerToken?: string | null | undefined;
}

/** Thrown before any request when a route needs a key the caller does not hold. */
export class MissingCredentialError extends Error {
  constructor(
    readonly route: RouteName,
    readonly needs: "internal" | "public",
  ) {
    super(`${route} needs ${needs === "internal" ? "the internal API key" : "an API key"}`);
    this.name = "MissingCredentialError";
  }
}

function authHeaders(name: RouteName, credentials: RouteCredentials): Record<string, string> {
  const route: { auth: string; workerToken?: boolean } = routes[name];
  if (route.auth === "none") return {};
  if (route.auth === "internal") {
    // A worker token lets a box act only as itself; the shared key would let it act as any worker.
    if (route.workerToken === true && credentials.workerToken) return { [HEADERS.authorization]: `Bearer ${credentials.workerToken}` };
    if (credentials.internalApiKey === undefined) throw new MissingCredentialError(name, "internal");
    return { [HEADERS.internalApiKey]: credentials.internalApiKey };
  }
  if (credentials.apiKey !== undefined) return { [HEADERS.apiKey]: credentials.apiKey };
  if (credentials.internalApiKey !== undefined) return { [HEADERS.internalApiKey]: credentials.internalApiKey };
  throw new MissingCredentialError(name, "public");
}

export interface RouteRequest {
  method: Route<RouteName>["method"];
  /** Base path (a reverse proxy's prefix), the route's path with its params filled, and the query. */
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** The HTTP request for one route: method, path, auth header, JSON body. */
export function routeRequest(name: RouteName, input: RouteInput, credentials: RouteCredentials, basePath = ""): RouteRequest {
  const route = routes[name];
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(input.query ?? {})) if (value !== undefined) query.set(key, String(value));
  const search = query.size > 0 ? `?${query.toString()}` : "";
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders(name, credentials), ...input.headers };
  let body: string | undefined;
  if (input.body !== undefined) {
    body = JSON.stringify(input.body);
    headers["content-type"] = "application/json";
  }
  return { method: route.method, path: basePath.replace(/\/+$/, "") + pathFor(route.path, input.params) + search, headers, body };
}

/** A reply read against the contract. `text` is the raw body, for excerpts in logs and messages. */
export type RouteReply<T> =
  | { ok: true; status: number; value: T }
  | {
      ok: false;
      status: number;
      /** `error`: a 4xx/5xx. `unexpected`: a status or 2xx body the contract does not describe. */
      kind: "error" | "unexpected";
      /** From the ErrorBody, when the body was one. */
      error: ErrorBody["error"] | null;
      /** Why an `unexpected` body was refused (its first schema issue); null for errors and unlisted statuses. */
      issue: string | null;
      requestId: string | null;
      text: string;
    };

export interface ReadReplyOptions {
  /**
   * Read every 2xx with this schema instead of the route's `responses`: the worker reads lenient
   * `*Reply` schemas so it also works against the original orchestrator.
   */
  reply?: z.ZodType;
  /** The response's request-id header, for errors whose body is not an ErrorBody. */
  requestIdHeader?: string | null;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Parses a reply with the route's schema for its status; errors with the one ErrorBody. */
export function readRouteReply<N extends RouteName>(name: N, status: number, text: string, options: ReadReplyOptions = {}): RouteReply<RouteResult<N>> {
  const json = parseJson(text);
  const requestId = options.requestIdHeader ?? null;
  if (status >= 400 || (options.reply !== undefined && (status < 200 || status >= 300))) {
    const parsed = ErrorBody.safeParse(json);
    const error = parsed.success ? parsed.data.error : null;
    return { ok: false, status, kind: "error", error, issue: null, requestId: error?.request_id ?? requestId, text };
  }
  const schema = options.reply ?? (routes[name].responses as Record<number, z.ZodType>)[status];
  if (schema === undefined) {
    return { ok: false, status, kind: "unexpected", error: null, issue: null, requestId, text };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const issue = first === undefined ? "body" : `${first.path.join(".") || "body"}: ${first.message}`;
    return { ok: false, status, kind: "unexpected", error: null, issue, requestId, text };
  }
  return { ok: true, status, value: parsed.data as RouteResult<N> };
}

/**
 * The part of an undici Dispatcher (Pool, Agent, Client) the layer uses, as a structural type so
 * the contract does not depend on undici; tests can adapt Fastify's `inject` to it.
 */
export interface RouteDispatcher {
  request(options: {
    origin: string;
    method: RouteRequest["method"];
    path: string;
    headers: Record<string, string>;
    body: string | undefined;
    headersTimeout?: number;
    bodyTimeout?: number;
    signal?: AbortSignal;
  }): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined>; body: { text(): Promise<string> } }>;
}

/**
 * A RouteDispatcher over the global fetch, for callers without undici (test helpers, tools). Its
 * bounds are the call's signal; fetch has no separate headers and body timeouts.
 */
export const fetchDispatcher: RouteDispatcher = {
  async request(o) {
    const res = await fetch(o.origin + o.path, { method: o.method, headers: o.headers, body: o.body, signal: o.signal ?? null });
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: { text: () => res.text() } };
  },
};

export interface CallRouteOptions {
  /** Bounds headers and body separately; the whole call ends one second after it. */
  timeoutMs: number;
  /** The caller's own signal (shutdown, drain). */
  signal?: AbortSignal | undefined;
  reply?: z.ZodType;
}

/** A call's outcome as data. `network`: no response arrived (refused, reset, timed out, aborted). */
export type RouteOutcome<T> =
  | RouteReply<T>
  | { ok: false; status: null; kind: "network"; cause: unknown; timedOut: boolean; aborted: boolean };

export interface RouteClient {
  readonly baseUrl: string;
  call<N extends RouteName>(name: N, input?: RouteInput, options?: Partial<CallRouteOptions>): Promise<RouteOutcome<RouteResult<N>>>;
}

export interface RouteClientOptions {
  /** The orchestrator's URL; a path in it is kept as a prefix of every route (a reverse proxy's). */
  baseUrl: string;
  credentials: RouteCredentials;
  dispatcher: RouteDispatcher;
  /** Default per-call timeout. */
  timeoutMs: number;
}

/** Sends routes of the table over one dispatcher; every body is read to the end (an unread one pins the socket). */
export function createRouteClient(opts: RouteClientOptions): RouteClient {
  const base = new URL(opts.baseUrl);
  return {
    baseUrl: opts.baseUrl,
    async call<N extends RouteName>(name: N, input: RouteInput = {}, callOpts: Partial<CallRouteOptions> = {}) {
      const request = routeRequest(name, input, opts.credentials, base.pathname);
      const timeoutMs = callOpts.timeoutMs ?? opts.timeoutMs;
      const timeout = AbortSignal.timeout(timeoutMs + 1_000);
      const signal = callOpts.signal ? AbortSignal.any([callOpts.signal, timeout]) : timeout;
      let status: number;
      let text: string;
      let requestIdHeader: string | null;
      try {
        const res = await opts.dispatcher.request({
          origin: base.origin,
          ...request,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal,
        });
        status = res.statusCode;
        const rid = res.headers[HEADERS.requestId];
        requestIdHeader = typeof rid === "string" ? rid : null;
        text = await res.body.text();
      } catch (cause) {
        const aborted = callOpts.signal?.aborted === true;
        return { ok: false, status: null, kind: "network", cause, timedOut: timeout.aborted && !aborted, aborted } as const;
      }
      return readRouteReply(name, status, text, { ...(callOpts.reply ? { reply: callOpts.reply } : {}), requestIdHeader });
    },
  };
}
