import { routes } from "@fleet/contract";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { ApiError } from "../http/api-error.js";
import { principalOf } from "../http/api-key-auth.js";
import { assertActsAs } from "../http/worker-identity.js";
import { listWorkers } from "../queue/list-workers.js";
import { setWorkerDrain } from "../queue/set-worker-drain.js";
import { toWorkerView } from "../views/worker-view.js";
import { contractRoute } from "./contract-route.js";
import type { RouteDeps } from "./deps.js";

/** Heartbeat and the operators' worker routes (list, drain, undrain). */
export function workerRoutes(deps: RouteDeps): FastifyPluginCallbackZod {
  const { config, db, auth, counters, heartbeats } = deps;
  const tags = ["worker API"];
  return (app, _options, done) => {
    // A worker whose heartbeats are refused (bad key, bad body) is online to itself and offline
    // to the fleet: count the refusals per worker so an alert names it. Scoped to this plugin.
    app.addHook("onResponse", (request, reply, next) => {
      if (request.routeOptions.url === routes.heartbeat.path && reply.statusCode >= 400 && reply.statusCode < 500) {
        const workerId = (request.params as { worker_id?: unknown } | undefined)?.worker_id;
        counters.heartbeatsRejected.inc([typeof workerId === "string" ? workerId.slice(0, 128) : "unknown", String(reply.statusCode)]);
      }
      next();
    });
    app.route({
      ...contractRoute(routes.heartbeat, auth, tags),
      handler: async (request) => {
        // A token heartbeating as another worker could renew its leases or report it draining.
        assertActsAs(principalOf(request), request.params.worker_id, `worker ${request.params.worker_id}`);
        const outcome = await heartbeats.record(request.params.worker_id, request.body);
        counters.heartbeats++;
        if (outcome.lost.length > 0 || outcome.cancel.length > 0) {
          request.log.info({ workerId: request.params.worker_id, lost: outcome.lost, cancel: outcome.cancel }, "heartbeat_attempts_to_stop");
        }
        if (outcome.ended.length > 0) {
          // An original buffer loop heartbeats only between jobs: these attempts are over on its side.
          request.log.warn({ workerId: request.params.worker_id, ended: outcome.ended }, "legacy_attempts_ended_by_idle_heartbeat");
        }
        return {
          detail: "ok" as const,
          heartbeat_interval_sec: config.HEARTBEAT_INTERVAL_SEC,
          lease_ttl_sec: config.LEASE_TTL_SEC,
          cancel: outcome.cancel,
          lost: outcome.lost,
          drain: outcome.drain,
        };
      },
    });

    app.route({
      ...contractRoute(routes.listWorkers, auth, tags),
      handler: async () => {
        const rows = await listWorkers(db.db, config.WORKER_OFFLINE_AFTER_SEC);
        return { workers: rows.map(toWorkerView) };
      },
    });

    for (const [route, drain] of [
      [routes.drainWorker, true],
      [routes.undrainWorker, false],
    ] as const) {
      app.route({
        ...contractRoute(route, auth, tags),
        handler: async (request) => {
          const workerId = request.params.worker_id;
          if (!(await setWorkerDrain(db.db, workerId, drain))) throw new ApiError("not_found", `unknown worker ${workerId}`);
          request.log.info({ workerId, drain }, drain ? "worker_drain_requested" : "worker_undrained");
          const [row] = await listWorkers(db.db, config.WORKER_OFFLINE_AFTER_SEC, workerId);
          if (!row) throw new ApiError("not_found", `unknown worker ${workerId}`);
          return { worker: toWorkerView(row) };
        },
      });
    }
    done();
  };
}
