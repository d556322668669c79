import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { HEADERS } from "@fleet/contract";
import { WakeSignal } from "@fleet/runtime";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { Logger } from "pino";
import { HeartbeatBatcher } from "./queue/heartbeat-batcher.js";
import { ClaimBatcher } from "./queue/claim-batcher.js";
import { SuccessBatcher } from "./queue/success-batcher.js";
import type { Config } from "./config.js";
import type { DatabaseHandle } from "./db/client.js";
import { bootstrapClients } from "./auth/bootstrap-clients.js";
import { CredentialStore } from "./auth/credential-store.js";
import { createApiKeyAuth } from "./http/api-key-auth.js";
import { ApiError } from "./http/api-error.js";
import { handleError } from "./http/error-handler.js";
import { assertJsonDepth } from "./http/json-depth.js";
import { assertStorableText } from "./http/unstorable-text.js";
import { resolveHost as defaultResolveHost, type ResolveHost } from "./http/url-guard.js";
import { startGaugeRefresher } from "./gauge-refresher.js";
import { Counters } from "./metrics.js";
import { adminRoutes } from "./routes/admin-routes.js";
import { attemptRoutes } from "./routes/attempt-routes.js";
import type { RouteDeps } from "./routes/deps.js";
import { healthRoutes } from "./routes/health-routes.js";
import { jobRoutes } from "./routes/job-routes.js";
import { mainTierRoutes } from "./routes/main-tier-routes.js";
import { metricsRoutes } from "./routes/metrics-routes.js";
import { workerRoutes } from "./routes/worker-routes.js";

/** Channel the jobs triggers NOTIFY when a job becomes queued (see drizzle/0001_triggers.sql). */
export const JOB_QUEUED_CHANNEL = "fleet_job_queued";

/** Bodies are small JSON; anything bigger is a mistake or an attack. */
const BODY_LIMIT_BYTES = 256 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export interface BuildAppOptions {
  config: Config;
  db: DatabaseHandle;
  log: Logger;
  /** Injectable so tests can make a hostname resolve to a private address. */
  resolveHost?: ResolveHost;
  counters?: Counters;
}

export type App = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, ZodTypeProvider>;

/** Builds the Fastify app; never listens (main.ts does, tests use `inject`). */
export async function buildApp(options: BuildAppOptions): Promise<App> {
  const { config, db, log } = options;
  // Typed as Fastify's logger so the app type does not depend on pino's generics.
  const fastifyLog: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance: fastifyLog,
    bodyLimit: BODY_LIMIT_BYTES,
    // One line per request would be 4,000 lines/s of heartbeats; onResponse below logs what matters.
    logController: new LogController({ disableRequestLogging: true }),
    // Keep a caller's id when it is a sane token, so one id follows a request across services.
    genReqId: (req) => {
      const given = req.headers[HEADERS.requestId];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Long-polling claims hold a request up to 30 s; keep sockets open a bit longer than that.
    requestTimeout: 45_000,
    keepAliveTimeout: 65_000,
    // Worker ids may be 128 characters (the contract's bound); longer ones still get a 400 from
    // the schema rather than the router's bare 404.
    maxParamLength: 512,
    // Errors the router raises before any route runs (a malformed %-escape) get the same body.
    frameworkErrors: (err, request, reply) => {
      handleError(err, request, reply);
    },
  }).withTypeProvider<ZodTypeProvider>();

  // 1. Schemas: zod validates requests and serializes responses (from the contract's table).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // 2. Body parsing: JSON only (text/plain bodies get 415), at most BODY_LIMIT_BYTES and
  //    MAX_JSON_DEPTH levels deep; an empty JSON body reads as no body, so body-less POSTs
  //    (drain/undrain) work with clients that always send the header.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = body.toString();
    if (text.trim() === "") return done(null, undefined);
    try {
      assertJsonDepth(text);
    } catch (err) {
      return done(err as Error, undefined);
    }
    void parseJson(request, text, done);
  });

  // Text PostgreSQL cannot store is a client error, found before validation and handlers.
  app.addHook("preValidation", (request, _reply, done) => {
    try {
      assertStorableText(request.body);
      done();
    } catch (err) {
      done(err as Error);
    }
  });

  // 3. Errors: one handler for everything, and 404s in the same body shape.
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request) => {
    throw new ApiError("not_found", `no route ${request.method} ${request.url.split("?")[0]}`);
  });

  // 4. Cross-cutting hooks: echo the request id; log rejected requests (never their headers).
  app.addHook("onRequest", (request, reply, done) => {
    void reply.header(HEADERS.requestId, request.id);
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    if (reply.statusCode >= 400 && reply.statusCode < 500) {
      request.log.info({ method: request.method, url: request.routeOptions.url ?? request.url, statusCode: reply.statusCode }, "request_rejected");
    } else {
      request.log.debug({ method: request.method, url: request.routeOptions.url, statusCode: reply.statusCode, ms: reply.elapsedTime }, "request_completed");
    }
    done();
  });

  // 5. OpenAPI: must be registered before the routes it documents.
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Fleet orchestrator", version: "1" },
      components: {
        securitySchemes: {
          internalApiKey: { type: "apiKey", in: "header", name: HEADERS.internalApiKey },
          apiKey: { type: "apiKey", in: "header", name: HEADERS.apiKey },
          workerToken: { type: "http", scheme: "bearer", description: "a per-worker token (fleet workers enroll)" },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  // 6. Clients: each PUBLIC_API_KEYS entry is a client (idempotent), before any request can need it.
  await bootstrapClients(db.db, config.PUBLIC_API_KEYS);
  const credentials = new CredentialStore(db.db, config.AUTH_CACHE_SEC * 1000);
  app.decorateRequest("principal", null);

  // 7. Routes, all from the contract's table (contract-route.ts attaches each route's auth hook).
  const wake = new WakeSignal();
  const gauges = startGaugeRefresher(db.db, config, log);
  app.addHook("onClose", () => gauges.stop());
  const deps: RouteDeps = {
    config,
    db,
    log,
    auth: createApiKeyAuth({ internalApiKey: config.INTERNAL_API_KEY, credentials }),
    credentials,
    wake,
    heartbeats: new HeartbeatBatcher(db.db, { leaseTtlSec: config.LEASE_TTL_SEC, legacyLeaseTtlSec: config.LEGACY_LEASE_TTL_SEC }),
    claims: new ClaimBatcher(db.db),
    successes: new SuccessBatcher(db.db),
    counters: options.counters ?? new Counters(),
    resolveHost: options.resolveHost ?? defaultResolveHost,
    gauges,
  };
  await app.register(healthRoutes(deps));
  await app.register(workerRoutes(deps));
  await app.register(attemptRoutes(deps));
  await app.register(mainTierRoutes(deps));
  await app.register(jobRoutes(deps));
  await app.register(adminRoutes(deps));
  await app.register(metricsRoutes(deps));
  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());

  // 8. Long-poll wake-ups: one LISTEN for the whole app, fanned out to waiting claims.
  const unlisten = await db.listen(JOB_QUEUED_CHANNEL, () => wake.notify());
  // preClose runs before the server waits for in-flight requests: held claims answer now instead
  // of keeping a shutdown waiting for up to 30 s.
  app.addHook("preClose", (done) => {
    wake.close();
    done();
  });
  app.addHook("onClose", async () => {
    await unlisten();
  });

  return app;
}
