import http from "node:http";
import type { AddressInfo } from "node:net";

/** What the proxy does with the next request. */
export type ProxyMode =
  | { kind: "pass" }
  | { kind: "status"; status: number; body: string }
  | { kind: "hang" }
  | { kind: "reset" };

export interface ProxiedRequest {
  method: string;
  path: string;
  at: number;
  mode: ProxyMode["kind"];
}

export interface FaultProxy {
  url: string;
  port: number;
  setMode(mode: ProxyMode): void;
  readonly requests: readonly ProxiedRequest[];
  count(match: RegExp, since?: number): number;
  close(): Promise<void>;
}

/**
 * Sits in front of the real orchestrator and, on command, answers for it: a status of our
 * choosing, a request held forever, a reset connection — the field note's failures, on demand.
 * In `pass` mode it is a transparent proxy, so recovery is tested against the real thing.
 */
export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  let mode: ProxyMode = { kind: "pass" };
  const requests: ProxiedRequest[] = [];
  const server = http.createServer((req, res) => {
    const current = mode;
    requests.push({ method: req.method ?? "", path: req.url ?? "", at: Date.now(), mode: current.kind });
    switch (current.kind) {
      case "hang":
        req.resume();
        return;
      case "reset":
        req.socket.destroy();
        return;
      case "status":
        req.resume();
        res.writeHead(current.status, { "content-type": "text/plain", "content-length": Buffer.byteLength(current.body) });
        res.end(current.body);
        return;
      case "pass": {
        const upstream = http.request(
          { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        upstream.on("error", () => res.destroy());
        req.pipe(upstream);
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setMode: (m) => void (mode = m),
    requests,
    count: (match, since = 0) => requests.filter((r) => r.at >= since && match.test(r.path)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
