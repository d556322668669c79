import { Agent, createServer, request as httpRequest } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FaultProxyStats {
  /** Requests passed to the upstream (answered or not). */
  forwarded: number;
  /** Requests answered by an injected failure window. */
  injected: number;
  /** Requests the upstream could not take (refused, reset): answered 502 or cut. */
  upstreamErrors: number;
}

export interface FaultProxy {
  url: string;
  /** Where requests go from now on (the orchestrator comes back on another port after a restart). */
  setTarget(url: string): void;
  /** Answers every request with `status` (503) for the next `ms`, as a load balancer in front of a sick backend would. */
  failFor(ms: number, status?: number): void;
  readonly stats: FaultProxyStats;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.destroy();
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), connection: "close" });
  res.end(text);
}

/**
 * A small reverse proxy on 127.0.0.1:0 between the workers (and the suite's client) and the
 * orchestrator. It streams requests through untouched, and can answer 503 for a window or follow
 * the orchestrator to a new port. A client that goes away takes its upstream request with it,
 * so a killed worker's long-poll claim ends at the orchestrator too.
 */
export async function startFaultProxy(initialTarget: string): Promise<FaultProxy> {
  let target = new URL(initialTarget);
  let failUntil = 0;
  let failStatus = 503;
  const stats: FaultProxyStats = { forwarded: 0, injected: 0, upstreamErrors: 0 };
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });

  function forward(req: IncomingMessage, res: ServerResponse): void {
    if (Date.now() < failUntil) {
      stats.injected++;
      req.resume();
      sendJson(res, failStatus, {
        error: { code: "service_unavailable", message: "injected by the fault proxy", request_id: "fault-proxy" },
      });
      return;
    }
    stats.forwarded++;
    const headers = { ...req.headers, host: target.host };
    const upstream = httpRequest(
      { protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        // An upstream that dies mid-body (a SIGKILLed orchestrator) cuts the client off too.
        upRes.on("close", () => {
          if (!upRes.complete) res.destroy();
        });
      },
    );
    upstream.on("error", (err) => {
      stats.upstreamErrors++;
      sendJson(res, 502, { error: "bad gateway", detail: err.message });
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  const server = createServer(forward);
  // Long-poll claims hold requests for seconds; the proxy must never be the one to time them out.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    setTarget(next) {
      target = new URL(next);
      // Pooled sockets point at the old process.
      agent.destroy();
    },
    failFor(ms, status = 503) {
      failStatus = status;
      failUntil = Date.now() + ms;
    },
    stats,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
