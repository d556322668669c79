import { describe, expect, it } from "vitest";
import { z } from "zod";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRouteClient, fetchDispatcher, MissingCredentialError, readRouteReply, routeRequest, type RouteDispatcher } from "./route-client.js";

type Sent = Parameters<RouteDispatcher["request"]>[0];

/** A dispatcher that records what it was asked and answers `status` with `body`. */
function answering(status: number, body: string, headers: Record<string, string> = {}): { dispatcher: RouteDispatcher; sent: Sent[] } {
  const sent: Sent[] = [];
  return {
    sent,
    dispatcher: {
      request: (options) => {
        sent.push(options);
        return Promise.resolve({ statusCode: status, headers, body: { text: () => Promise.resolve(body) } });
      },
    },
  };
}

const errorBody = (code: string, message: string) => JSON.stringify({ error: { code, message, request_id: "req-1" } });

describe("routeRequest", () => {
  it("fills and encodes params, keeps a base path, adds the query and the JSON body", () => {
    const req = routeRequest(
      "heartbeat",
      { params: { worker_id: "gpu 1/a" }, query: { a: 1, skip: undefined }, body: { status: "idle" } },
      { internalApiKey: "k" },
      "/fleet/",
    );
    expect(req).toEqual({
      method: "POST",
      path: "/fleet/internal/buffer/workers/gpu%201%2Fa/heartbeat?a=1",
      headers: { accept: "application/json", "x-internal-api-key": "k", "content-type": "application/json" },
      body: '{"status":"idle"}',
    });
  });

  it("sends a worker token instead of the shared key only on the routes marked workerToken", () => {
    const creds = { internalApiKey: "shared", workerToken: "fw_abc" };
    expect(routeRequest("claimJob", { body: {} }, creds).headers).toMatchObject({ authorization: "Bearer fw_abc" });
    expect(routeRequest("claimJob", { body: {} }, creds).headers).not.toHaveProperty("x-internal-api-key");
    expect(routeRequest("listWorkers", {}, creds).headers).toMatchObject({ "x-internal-api-key": "shared" });
  });

  it("takes the public key, else the internal key, on the public API, and nothing on open routes", () => {
    expect(routeRequest("getJob", { params: { id: "j" } }, { apiKey: "p", internalApiKey: "i" }).headers).toMatchObject({ "x-api-key": "p" });
    expect(routeRequest("getJob", { params: { id: "j" } }, { internalApiKey: "i" }).headers).toMatchObject({ "x-internal-api-key": "i" });
    expect(routeRequest("healthz", {}, {}).headers).toEqual({ accept: "application/json" });
  });

  it("refuses before sending when the route needs a key the caller lacks", () => {
    expect(() => routeRequest("listWorkers", {}, { apiKey: "p" })).toThrow(MissingCredentialError);
    expect(() => routeRequest("createJob", { body: {} }, {})).toThrow(expect.objectContaining({ route: "createJob", needs: "public" }));
  });

  it("throws on a missing path parameter instead of sending a literal :name", () => {
    expect(() => routeRequest("getJob", {}, { apiKey: "p" })).toThrow(/missing path parameter id/);
  });
});

describe("readRouteReply", () => {
  it("parses a listed 2xx with the route's schema", () => {
    expect(readRouteReply("healthz", 200, '{"status":"ok"}')).toEqual({ ok: true, status: 200, value: { status: "ok" } });
  });

  it("reads an ErrorBody on 4xx/5xx, and keeps the text of any other error body", () => {
    const refused = readRouteReply("getJob", 404, errorBody("not_found", "no job"));
    expect(refused).toMatchObject({ ok: false, kind: "error", status: 404, error: { code: "not_found", message: "no job" }, requestId: "req-1" });
    const html = readRouteReply("getJob", 502, "<html>bad gateway</html>", { requestIdHeader: "edge-9" });
    expect(html).toMatchObject({ ok: false, kind: "error", error: null, requestId: "edge-9", text: "<html>bad gateway</html>" });
  });

  it("calls an unlisted status or a body the schema refuses unexpected, naming the first issue", () => {
    expect(readRouteReply("healthz", 204, "")).toMatchObject({ ok: false, kind: "unexpected", issue: null });
    const refused = readRouteReply("healthz", 200, '{"status":3}');
    expect(refused).toMatchObject({ ok: false, kind: "unexpected" });
    expect(!refused.ok && refused.issue).toMatch(/^status:/);
  });

  it("reads every 2xx with a lenient schema when given one, and a 3xx as an error", () => {
    const lenient = z.unknown();
    expect(readRouteReply("heartbeat", 200, '{"detail":"ok"}', { reply: lenient })).toMatchObject({ ok: true, value: { detail: "ok" } });
    expect(readRouteReply("heartbeat", 302, "", { reply: lenient })).toMatchObject({ ok: false, kind: "error", status: 302 });
  });
});

describe("createRouteClient", () => {
  it("sends to the base URL's origin with its path as prefix, and bounds the call", async () => {
    const { dispatcher, sent } = answering(200, '{"status":"ok"}');
    const client = createRouteClient({ baseUrl: "http://127.0.0.1:9/proxy", credentials: {}, dispatcher, timeoutMs: 1234 });
    expect(await client.call("healthz")).toMatchObject({ ok: true, value: { status: "ok" } });
    expect(sent[0]).toMatchObject({ origin: "http://127.0.0.1:9", path: "/proxy/healthz", method: "GET", headersTimeout: 1234, bodyTimeout: 1234 });
    expect(sent[0]?.signal).toBeInstanceOf(AbortSignal);
  });

  it("returns a network outcome with its cause, telling the caller's abort from a timeout", async () => {
    const refused = new Error("connect ECONNREFUSED 127.0.0.1:9");
    const failing: RouteDispatcher = { request: () => Promise.reject(refused) };
    const client = createRouteClient({ baseUrl: "http://127.0.0.1:9", credentials: {}, dispatcher: failing, timeoutMs: 50 });
    expect(await client.call("healthz")).toEqual({ ok: false, status: null, kind: "network", cause: refused, timedOut: false, aborted: false });

    // A server that never answers: the dispatcher gives up only when the call's signal fires.
    const hanging: RouteDispatcher = {
      request: (o) => new Promise((_, reject) => o.signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true })),
    };
    const slow = createRouteClient({ baseUrl: "http://127.0.0.1:9", credentials: {}, dispatcher: hanging, timeoutMs: 20 });
    expect(await slow.call("healthz")).toMatchObject({ kind: "network", timedOut: true, aborted: false });
    const mine = new AbortController();
    const pending = slow.call("healthz", {}, { timeoutMs: 60_000, signal: mine.signal });
    mine.abort();
    expect(await pending).toMatchObject({ kind: "network", timedOut: false, aborted: true });
  });
});

describe("fetchDispatcher", () => {
  it("carries method, path, headers and body over real HTTP, and the reply's status, headers and text back", async () => {
    const seen: { method?: string; url?: string; key?: string | string[]; body?: string } = {};
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        Object.assign(seen, { method: req.method, url: req.url, key: req.headers["x-api-key"], body });
        res.writeHead(404, { "content-type": "application/json", "x-request-id": "req-7" });
        res.end(errorBody("not_found", "no such job"));
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const { port } = server.address() as AddressInfo;
      const client = createRouteClient({ baseUrl: `http://127.0.0.1:${port}/api`, credentials: { apiKey: "pk" }, dispatcher: fetchDispatcher, timeoutMs: 5_000 });
      const res = await client.call("createJob", { body: { video_url: "v" } });
      expect(seen).toEqual({ method: "POST", url: "/api/v1/avatar/jobs", key: "pk", body: '{"video_url":"v"}' });
      expect(res).toMatchObject({ ok: false, kind: "error", status: 404, error: { code: "not_found" }, requestId: "req-1" });
    } finally {
      server.close();
    }
  });
});
