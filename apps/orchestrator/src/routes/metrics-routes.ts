import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyPluginCallback } from "fastify";
import { renderFleetGauges } from "../fleet-gauges.js";
import { ApiError } from "../http/api-error.js";
import type { RouteDeps } from "./deps.js";

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * Prometheus text format. Gauges come from the database through the gauge refresher (shared by
 * all replicas, at most METRICS_REFRESH_SEC old); counters are this process's since start
 * (Prometheus sums replicas and handles restarts with rate()). A scrape runs no query. With
 * METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>`.
 */
export function metricsRoutes(deps: RouteDeps): FastifyPluginCallback {
  const { config, counters, gauges } = deps;
  const expected = config.METRICS_TOKEN ? digest(`Bearer ${config.METRICS_TOKEN}`) : null;
  return (app, _options, done) => {
    app.get("/metrics", { schema: { hide: true } }, (request, reply) => {
      if (expected) {
        const given = request.headers.authorization;
        if (typeof given !== "string" || !timingSafeEqual(digest(given), expected)) {
          throw new ApiError("unauthorized", "scraping /metrics needs Authorization: Bearer <METRICS_TOKEN>");
        }
      }
      const g = gauges.current;
      const lines: string[] = [];
      if (g) {
        lines.push(
          "# HELP fleet_jobs Jobs by status.",
          "# TYPE fleet_jobs gauge",
          ...Object.entries(g.jobs).map(([s, n]) => `fleet_jobs{status="${s}"} ${n}`),
          "# HELP fleet_workers Workers by liveness.",
          "# TYPE fleet_workers gauge",
          ...Object.entries(g.workers).map(([s, n]) => `fleet_workers{state="${s}"} ${n}`),
          "# HELP fleet_attempts_running Attempts holding a lease.",
          "# TYPE fleet_attempts_running gauge",
          `fleet_attempts_running ${g.attemptsRunning}`,
          "# HELP fleet_gauges_age_seconds Age of the database gauges above (refreshed every METRICS_REFRESH_SEC).",
          "# TYPE fleet_gauges_age_seconds gauge",
          `fleet_gauges_age_seconds ${((Date.now() - gauges.refreshedAt) / 1000).toFixed(3)}`,
        );
      }
      lines.push(
        counter("fleet_claims_total", "Claims that returned a job.", counters.claims),
        counter("fleet_claims_empty_total", "Claims that returned no job.", counters.emptyClaims),
        counter("fleet_heartbeats_total", "Worker heartbeats recorded.", counters.heartbeats),
        counter("fleet_status_reports_total", "Terminal status reports received.", counters.statusReports),
        counter("fleet_lease_lost_total", "Reports refused because the attempt no longer held its job.", counters.leaseLost),
        counter("fleet_leases_reaped_total", "Attempts interrupted because their lease expired.", counters.leasesReaped),
        counter("fleet_webhooks_delivered_total", "Webhook deliveries acknowledged with 2xx.", counters.webhooksDelivered),
        counter("fleet_webhooks_failed_total", "Webhook deliveries given up.", counters.webhooksFailed),
        ...counters.render(),
      );
      if (gauges.workers) lines.push(renderFleetGauges(gauges.workers));
      return reply.type("text/plain; version=0.0.4").send(`${lines.join("\n")}\n`);
    });
    done();
  };
}

function counter(name: string, help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}`;
}
