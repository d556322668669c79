import { createHash } from "node:crypto";
import { HEADERS, routes, type CreateJobRequest } from "@fleet/contract";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { INTERNAL_CLIENT_ID } from "../auth/principal.js";
import { ApiError } from "../http/api-error.js";
import { principalOf } from "../http/api-key-auth.js";
import { assertPublicUrl } from "../http/url-guard.js";
import { cancelJob } from "../queue/cancel-job.js";
import { createJob } from "../queue/create-job.js";
import { getJob } from "../queue/get-job.js";
import { jobScopeOf } from "../queue/job-scope.js";
import { listJobs } from "../queue/list-jobs.js";
import { toJobView } from "../views/job-view.js";
import { decodeCursor, encodeCursor } from "./job-cursor.js";
import { contractRoute } from "./contract-route.js";
import type { RouteDeps } from "./deps.js";

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** Hash of the parsed body (defaults applied), so key order and whitespace do not matter. */
function requestHash(body: CreateJobRequest): string {
  const canonical = JSON.stringify(body, (_key, value: unknown) =>
    value && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
  return createHash("sha256").update(canonical).digest("hex");
}

/**
 * The public job API: create, get, list, cancel. Every job belongs to the client that created it
 * (the internal key's jobs to the internal client); another client's job answers exactly as a
 * missing one does, so ids cannot be probed.
 */
export function jobRoutes(deps: RouteDeps): FastifyPluginCallbackZod {
  const { config, db, auth, resolveHost } = deps;
  const tags = ["jobs"];
  return (app, _options, done) => {
    app.route({
      ...contractRoute(routes.createJob, auth, tags),
      handler: async (request, reply) => {
        const body = request.body;
        const rawKey = request.headers[HEADERS.idempotencyKey];
        if (rawKey !== undefined && (typeof rawKey !== "string" || !IDEMPOTENCY_KEY.test(rawKey))) {
          throw new ApiError("invalid_request", "Idempotency-Key must be 1-200 printable ASCII characters", [
            { path: "headers.idempotency-key", message: "1-200 printable ASCII characters" },
          ]);
        }
        if (!config.ALLOW_PRIVATE_NETWORK_URLS) {
          await assertPublicUrl("video_url", body.video_url, resolveHost);
          await assertPublicUrl("audio_url", body.audio_url, resolveHost);
          if (body.webhook_url) await assertPublicUrl("webhook_url", body.webhook_url, resolveHost);
        }
        const principal = principalOf(request);
        const result = await createJob(db.db, body, {
          clientId: principal.kind === "client" ? principal.clientId : INTERNAL_CLIENT_ID,
          maxAttempts: config.MAX_ATTEMPTS,
          ...(rawKey ? { idempotencyKey: rawKey, requestHash: requestHash(body) } : {}),
        });
        if (result.kind === "idempotency_conflict") {
          throw new ApiError("idempotency_conflict", "this Idempotency-Key was used with a different request body");
        }
        if (result.kind === "created") request.log.info({ jobId: result.job.id }, "job_created");
        return reply.status(result.kind === "created" ? 201 : 200).send(toJobView(result.job));
      },
    });

    app.route({
      ...contractRoute(routes.getJob, auth, tags),
      handler: async (request) => {
        const row = await getJob(db.db, request.params.id, jobScopeOf(principalOf(request)));
        if (!row) throw new ApiError("not_found", `unknown job ${request.params.id}`);
        return toJobView(row);
      },
    });

    app.route({
      ...contractRoute(routes.listJobs, auth, tags),
      handler: async (request) => {
        const { status, limit, cursor } = request.query;
        const after = cursor === undefined ? undefined : decodeCursor(cursor);
        const scope = jobScopeOf(principalOf(request));
        const page = await listJobs(db.db, { scope, limit, ...(status ? { status } : {}), ...(after ? { after } : {}) });
        return { jobs: page.jobs.map(toJobView), next_cursor: page.next ? encodeCursor(page.next) : null };
      },
    });

    app.route({
      ...contractRoute(routes.cancelJob, auth, tags),
      handler: async (request) => {
        const outcome = await cancelJob(db.db, request.params.id, jobScopeOf(principalOf(request)));
        switch (outcome.kind) {
          case "not_found":
            throw new ApiError("not_found", `unknown job ${request.params.id}`);
          case "finished":
            throw new ApiError("job_finished", `job ${request.params.id} already ${outcome.job.status}`);
          case "cancelled":
            request.log.info({ jobId: outcome.job.id }, "job_cancelled");
            return { detail: "Job cancelled", job: toJobView(outcome.job) };
          case "requested":
            request.log.info({ jobId: outcome.job.id, workerId: outcome.job.worker_id }, "job_cancel_requested");
            return { detail: "Cancellation requested", job: toJobView(outcome.job) };
        }
      },
    });
    done();
  };
}
