import { routes } from "@fleet/contract";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { contractRoute } from "./contract-route.js";
import type { RouteDeps } from "./deps.js";

/** Liveness (`/health` is the original's path) and readiness (the database answers). */
export function healthRoutes(deps: RouteDeps): FastifyPluginCallbackZod {
  const { db, auth } = deps;
  const tags = ["health"];
  return (app, _options, done) => {
    app.route({ ...contractRoute(routes.health, auth, tags), handler: () => ({ status: "ok" as const }) });
    app.route({ ...contractRoute(routes.healthz, auth, tags), handler: () => ({ status: "ok" as const }) });
    app.route({
      ...contractRoute(routes.readyz, auth, tags),
      handler: async (request, reply) => {
        try {
          await db.ping(2000);
          return { status: "ok" as const, database: "ok" as const };
        } catch (err) {
          request.log.warn({ err }, "readiness_database_unreachable");
          return reply.status(503).send({ status: "unavailable", database: "unreachable" });
        }
      },
    });
    done();
  };
}
