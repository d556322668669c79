import { sql } from "drizzle-orm";
import type { FastifyPluginCallback } from "fastify";
import { queryRows } from "../db/client.js";
import { renderFleetGauges } from "../fleet-gauges.js";
import type { RouteDeps } from "./deps.js";

/**
 * Prometheus text format. Gauges come from the database (shared by all replicas); counters are
 * this process's since start (Prometheus sums replicas and handles restarts with rate()).
 */
export function metricsRoutes(deps: RouteDeps): FastifyPluginCallback {
  const { db, config, counters } = deps;
  return (app, _options, done) => {
    app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
      const jobs = await queryRows<{ status: string; n: number }>(
        db.db,
        sql`select status, count(*)::int as n from jobs group by status`,
      );
      const [workers] = await queryRows<{ online: number; offline: number; quarantined: number; draining: number; running: number }>(
        db.db,
        sql`select count(*) filter (where last_heartbeat > now() - make_interval(secs => ${config.WORKER_OFFLINE_AFTER_SEC}))::int as online,
                   count(*) filter (where last_heartbeat <= now() - make_interval(secs => ${config.WORKER_OFFLINE_AFTER_SEC}))::int as offline,
                   count(*) filter (where quarantined_until > now())::int as quarantined,
                   count(*) filter (where drain_requested or status = 'draining')::int as draining,
                   (select count(*)::int from buffer_jobs where status = 'running') as running
              from buffer_workers`,
      );
      const byStatus = new Map(jobs.map((r) => [r.status, r.n]));
      const lines = [
        "# HELP fleet_jobs Jobs by status.",
        "# TYPE fleet_jobs gauge",
        ...["queued", "running", "succeeded", "failed", "cancelled"].map((s) => `fleet_jobs{status="${s}"} ${byStatus.get(s) ?? 0}`),
        "# HELP fleet_workers Workers by liveness.",
        "# TYPE fleet_workers gauge",
        `fleet_workers{state="online"} ${workers?.online ?? 0}`,
        `fleet_workers{state="offline"} ${workers?.offline ?? 0}`,
        `fleet_workers{state="quarantined"} ${workers?.quarantined ?? 0}`,
        `fleet_workers{state="draining"} ${workers?.draining ?? 0}`,
        "# HELP fleet_attempts_running Attempts holding a lease.",
        "# TYPE fleet_attempts_running gauge",
        `fleet_attempts_running ${workers?.running ?? 0}`,
        counter("fleet_claims_total", "Claims that returned a job.", counters.claims),
        counter("fleet_claims_empty_total", "Claims that returned no job.", counters.emptyClaims),
        counter("fleet_heartbeats_total", "Worker heartbeats recorded.", counters.heartbeats),
        counter("fleet_status_reports_total", "Terminal status reports received.", counters.statusReports),
        counter("fleet_lease_lost_total", "Reports refused because the attempt no longer held its job.", counters.leaseLost),
        counter("fleet_leases_reaped_total", "Attempts interrupted because their lease expired.", counters.leasesReaped),
        counter("fleet_webhooks_delivered_total", "Webhook deliveries acknowledged with 2xx.", counters.webhooksDelivered),
        counter("fleet_webhooks_failed_total", "Webhook deliveries given up.", counters.webhooksFailed),
        ...counters.render(),
        await renderFleetGauges(db.db, config.WORKER_OFFLINE_AFTER_SEC),
      ];
      return reply.type("text/plain; version=0.0.4").send(`${lines.join("\n")}\n`);
    });
    done();
  };
}

function counter(name: string, help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}`;
}
