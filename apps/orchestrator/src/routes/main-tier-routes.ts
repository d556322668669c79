import { routes, WorkerTier } from "@fleet/contract";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { toClaimedJobView } from "../views/claimed-job-view.js";
import { contractRoute } from "./contract-route.js";
import type { RouteDeps } from "./deps.js";

/** `worker_type` names the tier; anything else the original sent (its test runs said "test-batch") is main. */
function tierOfWorkerType(workerType: string | null | undefined): WorkerTier {
  const tier = WorkerTier.safeParse(workerType);
  return tier.success && tier.data !== "buffer" ? tier.data : "main";
}

/**
 * The original main-tier worker's routes (`unified_worker.py`): a heartbeat from its own thread
 * every 10 s, during jobs too, naming the job it runs; a claim that answers the job without
 * `buffer_job_id`. Its final report arrives on /internal/jobs/{id}/progress (attempt-routes.ts).
 * Main-tier workers live in `buffer_workers` beside the buffer tier, told apart by `tier`.
 */
export function mainTierRoutes(deps: RouteDeps): FastifyPluginCallbackZod {
  const { config, auth, counters, heartbeats, claims } = deps;
  const tags = ["worker API (original main tier)"];
  return (app, _options, done) => {
    app.route({
      ...contractRoute(routes.mainHeartbeat, auth, tags),
      handler: async (request) => {
        const workerId = request.params.worker_id;
        const body = request.body;
        const system = { ...(body.system_info ?? {}), ...(body.provider ? { provider: body.provider } : {}) };
        await heartbeats.record(
          workerId,
          { status: body.status, gpu_class: body.gpu_class ?? null, capacity: 1, error: null, system },
          { tier: tierOfWorkerType(body.worker_type), currentJobId: body.current_job_id ?? null },
        );
        counters.heartbeats++;
        return { detail: "ok" as const };
      },
    });

    app.route({
      ...contractRoute(routes.mainClaimJob, auth, tags),
      handler: async (request) => {
        // No long-poll: the original polls every POLL_INTERVAL_SEC with a 15 s client timeout.
        const job = await claims.claim({
          workerId: request.body.worker_id,
          leaseTtlSec: config.LEASE_TTL_SEC,
          offlineAfterSec: config.WORKER_OFFLINE_AFTER_SEC,
          spillAfterSec: config.BUFFER_SPILL_AFTER_SEC,
        });
        if (!job) {
          counters.emptyClaims++;
          return { job: null };
        }
        counters.claims++;
        counters.queueWait.observe(Number(job.queue_wait_sec));
        request.log.info(
          { workerId: request.body.worker_id, jobId: job.job_id, bufferJobId: job.buffer_job_id, attempt: job.attempt, tier: "main" },
          "job_claimed",
        );
        // The original main-tier worker knows its attempt by the job id alone.
        const { buffer_job_id: _attempt, ...view } = toClaimedJobView(job);
        return { job: view };
      },
    });
    done();
  };
}
