import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";

interface Upstream {
  url: string;
  server: Server;
  seen: { method: string; url: string; body: string; host: string | undefined }[];
  /** Requests whose client went away before the answer. */
  aborted: number;
}

async function startUpstream(name: string, opts: { holdMs?: number } = {}): Promise<Upstream> {
  const up: Upstream = { url: "", server: createServer(), seen: [], aborted: 0 };
  up.server.on("request", (req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      up.seen.push({ method: req.method ?? "", url: req.url ?? "", body, host: req.headers.host });
      const timer = setTimeout(() => {
        res.writeHead(201, { "content-type": "application/json", "x-upstream": name });
        res.end(JSON.stringify({ from: name, body }));
      }, opts.holdMs ?? 0);
      res.on("close", () => {
        if (!res.writableFinished) {
          clearTimeout(timer);
          up.aborted++;
        }
      });
    });
  });
  await new Promise<void>((resolve) => up.server.listen(0, "127.0.0.1", resolve));
  up.url = `http://127.0.0.1:${(up.server.address() as AddressInfo).port}`;
  return up;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(opts: { holdMs?: number } = {}): Promise<{ a: Upstream; proxy: FaultProxy }> {
  const a = await startUpstream("a", opts);
  cleanup.push(async () => {
    a.server.closeAllConnections();
    await new Promise((r) => a.server.close(r));
  });
  const proxy = await startFaultProxy(a.url);
  cleanup.push(() => proxy.close());
  return { a, proxy };
}

it("passes requests through with method, path, query, body, status and headers intact", async () => {
  const { a, proxy } = await setup();
  const res = await fetch(`${proxy.url}/v1/avatar/jobs?limit=2`, { method: "POST", body: '{"x":1}', headers: { "content-type": "application/json" } });
  expect(res.status).toBe(201);
  expect(res.headers.get("x-upstream")).toBe("a");
  expect(await res.json()).toEqual({ from: "a", body: '{"x":1}' });
  expect(a.seen).toEqual([{ method: "POST", url: "/v1/avatar/jobs?limit=2", body: '{"x":1}', host: new URL(a.url).host }]);
  expect(proxy.stats).toMatchObject({ forwarded: 1, injected: 0 });
});

it("answers 503 for the failure window without reaching the upstream, then forwards again", async () => {
  const { a, proxy } = await setup();
  proxy.failFor(300);
  const during = await fetch(`${proxy.url}/internal/buffer/jobs/claim`, { method: "POST", body: "{}" });
  expect(during.status).toBe(503);
  expect(await during.json()).toMatchObject({ error: { code: "service_unavailable" } });
  expect(a.seen).toHaveLength(0);
  await new Promise((r) => setTimeout(r, 350));
  expect((await fetch(`${proxy.url}/healthz`)).status).toBe(201);
  expect(proxy.stats).toMatchObject({ injected: 1, forwarded: 1 });
});

it("follows the upstream to a new port and answers 502 while nothing listens", async () => {
  const { a, proxy } = await setup();
  const b = await startUpstream("b");
  cleanup.push(async () => {
    b.server.closeAllConnections();
    await new Promise((r) => b.server.close(r));
  });
  a.server.closeAllConnections();
  await new Promise((r) => a.server.close(r));
  const down = await fetch(`${proxy.url}/healthz`);
  expect(down.status).toBe(502);
  expect(proxy.stats.upstreamErrors).toBe(1);
  proxy.setTarget(b.url);
  const up = await fetch(`${proxy.url}/healthz`);
  expect(up.headers.get("x-upstream")).toBe("b");
});

it("ends the upstream request when its client goes away (a killed worker's long-poll)", async () => {
  const { a, proxy } = await setup({ holdMs: 5_000 });
  const controller = new AbortController();
  const pending = fetch(`${proxy.url}/internal/buffer/jobs/claim`, { method: "POST", body: "{}", signal: controller.signal }).catch((err: unknown) => err);
  for (let i = 0; i < 50 && a.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  controller.abort();
  await pending;
  for (let i = 0; i < 50 && a.aborted === 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(a.aborted).toBe(1);
});
