import { pathFor, routes, type EnrollWorkerResponse, type ErrorBody, type RouteDef } from "@fleet/contract";
import type pino from "pino";
import { Writable } from "node:stream";
import { describe, expect, test } from "vitest";
import { createLogger } from "../logging/create-logger.js";
import { appTest, call, INTERNAL_KEY, PUBLIC_KEY } from "../test-support/harness.js";

const SAMPLE_PARAMS: Record<string, string> = {
  worker_id: "auth-probe",
  buffer_job_id: "2b1f0f3e-7c55-4d1a-9d61-0c4b2f5e8a11",
  job_id: "3c2a1b4d-8e66-4f2b-8a72-1d5c3e6f9b22",
  id: "4d3b2c5e-9f77-4a3c-9b83-2e6d4f7a0c33",
  key: "fk_00000000",
};

const SAMPLE_BODIES: Partial<Record<keyof typeof routes, unknown>> = {
  heartbeat: { status: "idle", gpu_class: "x", capacity: 1, error: null },
  claimJob: { worker_id: "auth-probe" },
  reportJobStatus: { status: "failed", error: "x" },
  reportProgress: { progress: 0.5, worker_id: "auth-probe" },
  createJob: { video_url: "https://93.184.216.34/v.mp4", audio_url: "https://93.184.216.34/a.wav" },
  createApiKey: { name: "auth probe" },
  revokeWorkerTokens: {},
};

/** Rebuilds full "METHOD /path" entries from Fastify's printed route tree (4 columns per level). */
function registeredRoutes(tree: string): string[] {
  const prefixes: string[] = [];
  return tree.split("\n").flatMap((line) => {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) return [];
    const depth = m[1]!.length / 4;
    const path = (prefixes[depth - 1] ?? "") + m[2]!;
    prefixes[depth] = path;
    return m[3]!.split(", ").map((method) => `${method} ${path}`);
  });
}

const protectedRoutes = (Object.entries(routes) as [keyof typeof routes, RouteDef][]).filter(([, r]) => r.auth !== "none");

describe("API keys", () => {
  appTest("every /internal and /v1 route of the contract's table refuses a missing or wrong key, and keys never reach the logs", async ({ t }) => {
    // The table covers the whole protected surface: every registered /internal or /v1 route is in it.
    const tableRoutes = new Set(Object.values(routes).map((r) => `${r.method} ${r.path}`));
    const registered = registeredRoutes(t.app.printRoutes({ commonPrefix: false }))
      .filter((r) => /^(GET|POST|PUT|DELETE) \/(internal|v1)\//.test(r));
    expect(registered.length).toBeGreaterThanOrEqual(protectedRoutes.length);
    for (const route of registered) expect(tableRoutes, `${route} is not in the contract's route table`).toContain(route);

    const wrongKeys = ["wrong-key-000000001", `${INTERNAL_KEY}x`, INTERNAL_KEY.slice(0, -1)];
    // A real worker token opens only the routes a worker calls, never the operators' or clients' routes.
    const enrolled = await call<EnrollWorkerResponse>(t.app, "POST", "/internal/admin/workers/auth-probe/tokens");
    expect(enrolled.status).toBe(201);
    const workerToken = enrolled.json.token;
    expect(protectedRoutes.length).toBeGreaterThanOrEqual(11);
    for (const [name, route] of protectedRoutes) {
      expect(t.app.hasRoute({ method: route.method, url: route.path }), `${name} is not registered`).toBe(true);
      const url = pathFor(route.path, SAMPLE_PARAMS);
      const body = SAMPLE_BODIES[name];
      const attempts: Record<string, string>[] = [
        {},
        ...wrongKeys.map((k) => ({ "x-internal-api-key": k })),
        ...wrongKeys.map((k) => ({ "x-api-key": k })),
        { authorization: `Bearer ${INTERNAL_KEY}` },
      ];
      // A public key never opens the worker API.
      if (route.auth === "internal") attempts.push({ "x-api-key": PUBLIC_KEY }, { "x-internal-api-key": PUBLIC_KEY });
      if (route.workerToken !== true) attempts.push({ authorization: `Bearer ${workerToken}` }, { "x-api-key": workerToken });
      else attempts.push({ authorization: `Bearer ${workerToken}x` }, { authorization: workerToken }, { "x-internal-api-key": workerToken });
      for (const headers of attempts) {
        const res = await t.app.inject({
          method: route.method,
          url,
          headers,
          ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
        });
        expect(res.statusCode, `${name} with ${JSON.stringify(headers)}: ${res.body}`).toBe(401);
        expect(res.json<ErrorBody>().error.code).toBe("unauthorized");
      }
      // The right key gets past auth (whatever the route then says about the sample request).
      const ok = await t.app.inject({
        method: route.method,
        url,
        headers: route.auth === "internal" ? { "x-internal-api-key": INTERNAL_KEY } : { "x-api-key": PUBLIC_KEY },
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      });
      expect(ok.statusCode, `${name}: ${ok.body}`).not.toBe(401);
      if (route.workerToken === true) {
        const asWorker = await t.app.inject({
          method: route.method,
          url,
          headers: { authorization: `Bearer ${workerToken}` },
          ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
        });
        expect(asWorker.statusCode, `${name} with the worker token: ${asWorker.body}`).not.toBe(401);
      }
    }

    const logText = t.logs.join("\n");
    expect(t.logs.length).toBeGreaterThan(0);
    for (const secret of [INTERNAL_KEY, PUBLIC_KEY, workerToken, ...wrongKeys]) expect(logText).not.toContain(secret);
  });
});

describe("log redaction", () => {
  test("keys in headers, config dumps and secret-looking fields are censored", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log: pino.Logger = createLogger({ LOG_LEVEL: "info", LOG_PRETTY: false }, sink);
    log.info(
      {
        req: { headers: { "x-internal-api-key": "k-internal-1", "x-api-key": "k-public-1", authorization: "Bearer k-bearer-1" } },
        config: { INTERNAL_API_KEY: "k-internal-2", PUBLIC_API_KEYS: ["k-public-2"], WEBHOOK_SECRET: "k-webhook-1" },
        client: { apiKey: "k-client-1", secret: "k-secret-1" },
      },
      "probe",
    );
    const text = lines.join("");
    for (const secret of ["k-internal-1", "k-public-1", "k-bearer-1", "k-internal-2", "k-public-2", "k-webhook-1", "k-client-1", "k-secret-1"]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain("[redacted]");
  });
});
