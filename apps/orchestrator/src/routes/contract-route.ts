import type { RouteDef } from "@fleet/contract";
import type { ApiKeyAuth } from "../http/api-key-auth.js";

type Opt<R, K extends string> = R extends Record<K, infer S> ? S : undefined;

/**
 * The Fastify route options for one entry of the contract's route table: method, path, schemas
 * and the auth hook all come from the table, so a route cannot drift from the contract or
 * forget its key check. Handlers are spelled out in the route files.
 */
export function contractRoute<const R extends RouteDef>(route: R, auth: ApiKeyAuth, tags: string[]) {
  const security: Record<string, string[]>[] =
    route.auth === "internal"
      ? route.workerToken === true
        ? [{ internalApiKey: [] }, { workerToken: [] }]
        : [{ internalApiKey: [] }]
      : route.auth === "public"
        ? [{ apiKey: [] }, { internalApiKey: [] }]
        : [];
  return {
    method: route.method,
    url: route.path,
    onRequest: auth.hookFor(route),
    schema: {
      summary: route.summary,
      tags,
      security,
      // Absent parts are left out, not set to undefined (Fastify warns about undefined schemas).
      ...(present({ params: route.params, querystring: route.query, body: route.body }) as {
        params: Opt<R, "params">;
        querystring: Opt<R, "query">;
        body: Opt<R, "body">;
      }),
      response: route.responses as R["responses"],
    },
  };
}

function present(parts: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(parts).filter(([, v]) => v !== undefined));
}
