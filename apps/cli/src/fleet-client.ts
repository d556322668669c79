import { ErrorBody, HEADERS, pathFor, routes } from "@fleet/contract";
import type { RouteName } from "@fleet/contract";
import { request } from "undici";
import type { Dispatcher } from "undici";
import type { z } from "zod";
import { FleetApiError, FleetConnectionError, FleetProtocolError } from "./fleet-api-error.js";

type Route<N extends RouteName> = (typeof routes)[N];
type Responses<N extends RouteName> = Route<N>["responses"];
type SuccessStatus<N extends RouteName> = Extract<keyof Responses<N>, 200 | 201>;

/** What a successful call returns: the parsed body of the route's 2xx response. */
export type RouteResult<N extends RouteName> = z.output<Responses<N>[SuccessStatus<N>] & z.ZodType>;

export interface CallInput {
  params?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface FleetClientOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  internalApiKey?: string | undefined;
  dispatcher?: Dispatcher;
  /** Bounds headers and body separately; a stuck orchestrator must not hang the CLI. */
  timeoutMs?: number;
}

export interface FleetClient {
  readonly baseUrl: string;
  call<N extends RouteName>(name: N, input?: CallInput): Promise<RouteResult<N>>;
}

/** Thrown before any request when a route needs a key the operator has not given. */
export class MissingKeyError extends Error {
  constructor(readonly route: RouteName, readonly needs: "internal" | "public") {
    super(
      needs === "internal"
        ? `this command needs the worker API key: set INTERNAL_API_KEY or pass --internal-key`
        : `this command needs an API key: set FLEET_API_KEY (or INTERNAL_API_KEY) or pass --api-key`,
    );
    this.name = "MissingKeyError";
  }
}

function authHeaders(name: RouteName, opts: FleetClientOptions): Record<string, string> {
  const auth = routes[name].auth;
  if (auth === "none") return {};
  if (auth === "internal") {
    if (opts.internalApiKey === undefined) throw new MissingKeyError(name, "internal");
    return { [HEADERS.internalApiKey]: opts.internalApiKey };
  }
  if (opts.apiKey !== undefined) return { [HEADERS.apiKey]: opts.apiKey };
  // The public API also takes the internal key (clients of the original send it).
  if (opts.internalApiKey !== undefined) return { [HEADERS.internalApiKey]: opts.internalApiKey };
  throw new MissingKeyError(name, "public");
}

function buildUrl(baseUrl: string, path: string, query: CallInput["query"]): string {
  const url = new URL(baseUrl);
  // Keep a base path (a reverse proxy's prefix) instead of resolving against the host root.
  url.pathname = url.pathname.replace(/\/$/, "") + path;
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.toString();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A typed client over the contract's route table: every response is parsed with its schema. */
export function createFleetClient(opts: FleetClientOptions): FleetClient {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return {
    baseUrl: opts.baseUrl,
    async call<N extends RouteName>(name: N, input: CallInput = {}): Promise<RouteResult<N>> {
      const route = routes[name];
      const url = buildUrl(opts.baseUrl, pathFor(route.path, input.params), input.query);
      const headers: Record<string, string> = { accept: "application/json", ...authHeaders(name, opts), ...input.headers };
      let body: string | undefined;
      if (input.body !== undefined) {
        body = JSON.stringify(input.body);
        headers["content-type"] = "application/json";
      }
      let status: number;
      let text: string;
      let requestIdHeader: string | null;
      try {
        const res = await request(url, {
          method: route.method,
          headers,
          body,
          dispatcher: opts.dispatcher,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        status = res.statusCode;
        const rid = res.headers[HEADERS.requestId];
        requestIdHeader = typeof rid === "string" ? rid : null;
        // Always consume the body, even for errors: an unread body pins the connection.
        text = await res.body.text();
      } catch (err) {
        throw new FleetConnectionError(opts.baseUrl, err);
      }
      const json = parseJson(text);
      if (status >= 400) {
        const parsed = ErrorBody.safeParse(json);
        if (parsed.success) {
          const e = parsed.data.error;
          throw new FleetApiError(status, e.code, e.message, e.request_id, e.details ?? []);
        }
        const excerpt = text.slice(0, 200).trim() || "(empty body)";
        throw new FleetApiError(status, null, excerpt, requestIdHeader);
      }
      const schema = (route.responses as Record<number, z.ZodType>)[status];
      if (schema === undefined) {
        throw new FleetProtocolError(`${route.method} ${route.path} answered ${status}, which the contract does not list`);
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        const first = parsed.error.issues[0];
        const where = first === undefined ? "" : ` (${first.path.join(".") || "body"}: ${first.message})`;
        throw new FleetProtocolError(
          `${route.method} ${route.path} answered ${status} with a body the contract does not accept${where}; is ${opts.baseUrl} a Fleet orchestrator of the same version?`,
        );
      }
      return parsed.data as RouteResult<N>;
    },
  };
}
