import { routes } from "@fleet/contract";
import type { FastifyPluginCallbackZod } from "fastify-type-provider-zod";
import { toApiKeyView } from "../admin/api-key-row.js";
import { createClientKey } from "../admin/create-client-key.js";
import { issueWorkerToken } from "../admin/issue-worker-token.js";
import { listApiKeys } from "../admin/list-api-keys.js";
import { revokeApiKey } from "../admin/revoke-api-key.js";
import { revokeWorkerTokens } from "../admin/revoke-worker-tokens.js";
import { toWorkerTokenView } from "../admin/worker-token-row.js";
import { ApiError } from "../http/api-error.js";
import { contractRoute } from "./contract-route.js";
import type { RouteDeps } from "./deps.js";

/**
 * Operators' credential routes (`fleet keys`, `fleet workers enroll`), internal key only. Keys and
 * tokens appear in a response once, at creation; logs name them by prefix.
 */
export function adminRoutes(deps: RouteDeps): FastifyPluginCallbackZod {
  const { db, auth, credentials } = deps;
  const tags = ["admin"];
  return (app, _options, done) => {
    app.route({
      ...contractRoute(routes.createApiKey, auth, tags),
      handler: async (request, reply) => {
        const created = await createClientKey(db.db, request.body.name);
        request.log.info({ clientId: created.row.client_id, prefix: created.row.prefix }, "api_key_created");
        return reply.status(201).send({ key: created.key, webhook_secret: created.webhookSecret, api_key: toApiKeyView(created.row) });
      },
    });

    app.route({
      ...contractRoute(routes.listApiKeys, auth, tags),
      handler: async () => ({ keys: (await listApiKeys(db.db)).map(toApiKeyView) }),
    });

    app.route({
      ...contractRoute(routes.revokeApiKey, auth, tags),
      handler: async (request) => {
        const row = await revokeApiKey(db.db, request.params.key);
        if (!row) throw new ApiError("not_found", `no API key with prefix or id ${request.params.key}`);
        credentials.forgetAll();
        request.log.info({ clientId: row.client_id, prefix: row.prefix }, "api_key_revoked");
        return { api_key: toApiKeyView(row) };
      },
    });

    app.route({
      ...contractRoute(routes.enrollWorker, auth, tags),
      handler: async (request, reply) => {
        const issued = await issueWorkerToken(db.db, request.params.worker_id);
        request.log.info({ workerId: issued.row.worker_id, prefix: issued.row.prefix }, "worker_token_issued");
        return reply.status(201).send({ token: issued.token, worker_token: toWorkerTokenView(issued.row) });
      },
    });

    app.route({
      ...contractRoute(routes.revokeWorkerTokens, auth, tags),
      handler: async (request) => {
        const workerId = request.params.worker_id;
        const revoked = await revokeWorkerTokens(db.db, workerId, request.body?.prefix);
        if (revoked.length === 0) throw new ApiError("not_found", `worker ${workerId} has no unrevoked token${request.body?.prefix ? ` with prefix ${request.body.prefix}` : ""}`);
        credentials.forgetAll();
        request.log.info({ workerId, prefixes: revoked.map((r) => r.prefix) }, "worker_tokens_revoked");
        return { revoked: revoked.map(toWorkerTokenView) };
      },
    });
    done();
  };
}
