import { randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { basename, extname, resolve } from "node:path";
import { sendFileRange } from "@fleet/runtime";

const CONTENT_TYPES: Record<string, string> = {
  ".mp4": "video/mp4",
  ".mov": "video/quicktime",
  ".webm": "video/webm",
  ".mkv": "video/x-matroska",
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg",
  ".m4a": "audio/mp4",
  ".aac": "audio/aac",
  ".ogg": "audio/ogg",
  ".flac": "audio/flac",
};

export interface LocalFileServer {
  /** Starts serving `path` and returns the URL a worker downloads it from. */
  serve(path: string): Promise<string>;
  close(): Promise<void>;
}

export interface LocalFileServerOptions {
  /** Host written into the URLs: an address the worker can reach. */
  advertiseHost: string;
  /** Address to listen on; defaults to advertiseHost when it is an IP, else all interfaces. */
  bindHost?: string;
  port?: number;
}

/**
 * Lets `fleet submit --video ./face.mp4` work: the worker downloads inputs by URL, so local files
 * are served over HTTP for as long as the job runs. Each file gets an unguessable path; nothing
 * else on the machine is reachable through it.
 */
export async function startLocalFileServer(opts: LocalFileServerOptions): Promise<LocalFileServer> {
  const files = new Map<string, { path: string; size: number }>();
  const server = createServer((req, res) => {
    const urlPath = (req.url ?? "/").split("?")[0] ?? "/";
    const file = files.get(urlPath);
    if (file === undefined || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(file === undefined ? 404 : 405).end();
      return;
    }
    sendFileRange(req, res, { ...file, contentType: CONTENT_TYPES[extname(file.path).toLowerCase()] ?? "application/octet-stream" });
  });
  const bindHost = opts.bindHost ?? (isIP(opts.advertiseHost) !== 0 ? opts.advertiseHost : "0.0.0.0");
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(opts.port ?? 0, bindHost, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const host = isIP(opts.advertiseHost) === 6 ? `[${opts.advertiseHost}]` : opts.advertiseHost;
  const origin = `http://${host}:${port}`;
  return {
    async serve(path) {
      const full = resolve(path);
      const info = await stat(full);
      if (!info.isFile()) throw new Error(`${path} is not a file`);
      const urlPath = `/${randomBytes(12).toString("hex")}/${encodeURIComponent(basename(full))}`;
      files.set(urlPath, { path: full, size: info.size });
      return origin + urlPath;
    },
    close() {
      server.closeAllConnections();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || h.startsWith("127.");
}

/**
 * The address to put in input URLs when the operator gave none: loopback when the orchestrator is
 * on this machine (the quick start), else this machine's first external IPv4 address, which a
 * worker on the same network can reach. Behind NAT, pass --serve-host.
 */
export function chooseAdvertiseHost(orchestratorUrl: string): string {
  if (isLoopbackHost(new URL(orchestratorUrl).hostname)) return "127.0.0.1";
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  return "127.0.0.1";
}
