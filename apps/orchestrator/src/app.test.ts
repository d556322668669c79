import { routes } from "@fleet/contract";
import { describe, expect } from "vitest";
import { appTest, call, claim, createJobViaApi, heartbeat } from "./test-support/harness.js";

describe("the app", () => {
  appTest("an unexpected error is a masked 500 with a request id, and is logged with that id", async ({ startApp }) => {
    const t = await startApp({}, {
      // A route that fails the way a bug would.
      beforeReady: (app) =>
        app.get("/boom", () => {
          throw new Error('secret internals: relation "jobs" does not exist');
        }),
    });
    const res = await t.app.inject({ method: "GET", url: "/boom", headers: { "x-request-id": "trace-123" } });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({
      error: { code: "internal_error", message: "internal error; quote the request id when reporting it", request_id: "trace-123" },
    });
    expect(res.body).not.toContain("secret internals");
    const logged = t.logs.find((l) => l.includes('"request_failed"'));
    expect(logged).toContain("trace-123");
    expect(logged).toContain("secret internals");
  });

  appTest("health, readiness, metrics and the OpenAPI document answer", async ({ startApp }) => {
    const t = await startApp({ METRICS_REFRESH_SEC: "0.1" });
    expect((await call(t.app, "GET", "/health", { key: null })).json).toEqual({ status: "ok" });
    expect((await call(t.app, "GET", "/healthz", { key: null })).json).toEqual({ status: "ok" });
    expect((await call(t.app, "GET", "/readyz", { key: null })).json).toEqual({ status: "ok", database: "ok" });

    await heartbeat(t.app, "m1");
    await createJobViaApi(t.app);
    await createJobViaApi(t.app);
    await claim(t.app, "m1");
    // Database gauges come from a cache refreshed every METRICS_REFRESH_SEC: wait for the refresh.
    let metrics = await call(t.app, "GET", "/metrics", { key: null });
    for (const deadline = Date.now() + 20_000; !metrics.body.includes('fleet_jobs{status="running"} 1') && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 50));
      metrics = await call(t.app, "GET", "/metrics", { key: null });
    }
    expect(metrics.headers["content-type"]).toMatch(/^text\/plain/);
    expect(metrics.body).toContain('fleet_jobs{status="queued"} 1');
    expect(metrics.body).toContain('fleet_jobs{status="running"} 1');
    expect(metrics.body).toContain('fleet_workers{state="online"} 1');
    expect(metrics.body).toContain("fleet_claims_total 1");
    expect(metrics.body).toContain("fleet_heartbeats_total 1");

    const openapi = (await call(t.app, "GET", "/openapi.json", { key: null })).json as { paths: Record<string, Record<string, unknown>> };
    for (const route of Object.values(routes)) {
      const path = route.path.replace(/:([a-z_]+)/g, "{$1}");
      expect(openapi.paths[path]?.[route.method.toLowerCase()], `${route.method} ${path}`).toBeDefined();
    }
    const docs = await t.app.inject({ method: "GET", url: "/docs/" });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain("swagger");
  });
});

