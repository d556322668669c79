import { createRouteClient, MissingCredentialError, routes } from "@fleet/contract";
import type { RouteInput, RouteName, RouteResult } from "@fleet/contract";
import { getGlobalDispatcher } from "undici";
import type { Dispatcher } from "undici";
import { FleetApiError, FleetConnectionError, FleetProtocolError } from "./fleet-api-error.js";

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
  call<N extends RouteName>(name: N, input?: RouteInput): Promise<RouteResult<N>>;
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

/**
 * The contract's route client with the CLI's failure policy: every failure is thrown as an error
 * an operator can act on (API error with code and request id, unreachable, or a version skew).
 */
export function createFleetClient(opts: FleetClientOptions): FleetClient {
  const client = createRouteClient({
    baseUrl: opts.baseUrl,
    credentials: { apiKey: opts.apiKey, internalApiKey: opts.internalApiKey },
    dispatcher: opts.dispatcher ?? getGlobalDispatcher(),
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  return {
    baseUrl: opts.baseUrl,
    async call<N extends RouteName>(name: N, input: RouteInput = {}): Promise<RouteResult<N>> {
      let outcome;
      try {
        outcome = await client.call(name, input);
      } catch (err) {
        if (err instanceof MissingCredentialError) throw new MissingKeyError(err.route, err.needs);
        throw err;
      }
      if (outcome.ok) return outcome.value;
      if (outcome.kind === "network") throw new FleetConnectionError(opts.baseUrl, outcome.cause);
      const route = routes[name];
      if (outcome.kind === "unexpected") {
        throw new FleetProtocolError(
          outcome.issue === null
            ? `${route.method} ${route.path} answered ${outcome.status}, which the contract does not list`
            : `${route.method} ${route.path} answered ${outcome.status} with a body the contract does not accept (${outcome.issue}); is ${opts.baseUrl} a Fleet orchestrator of the same version?`,
        );
      }
      const e = outcome.error;
      if (e !== null) throw new FleetApiError(outcome.status, e.code, e.message, e.request_id, e.details ?? []);
      throw new FleetApiError(outcome.status, null, outcome.text.slice(0, 200).trim() || "(empty body)", outcome.requestId);
    },
  };
}
