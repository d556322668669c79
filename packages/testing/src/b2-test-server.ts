import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authorize, handleApiCall, isApiOp } from "./b2-api-handlers.js";
import { B2_OPS, B2HttpError, TokenRegistry, drain, faultError, header, sendB2Error, sendJson } from "./b2-http.js";
import type { B2Op, B2State } from "./b2-http.js";
import { B2Store } from "./b2-store.js";
import type { B2StoredObject } from "./b2-store.js";
import { handleUpload, handleUploadPart, sendObject } from "./b2-transfer-handlers.js";

export { B2_OPS };
export type { B2Op, B2StoredObject };

export interface B2TestServerOptions {
  keyId?: string;
  appKey?: string;
  bucketName?: string;
  accountId?: string;
  /** allPublic (default, like the original's bucket): downloads by name need no token. */
  bucketType?: "allPublic" | "allPrivate";
  /** Default true: like a production key limited to one bucket, so b2_list_buckets must name it. */
  restrictedToBucket?: boolean;
  /** Bytes; B2 says 100 MB. */
  recommendedPartSize?: number;
  /** Bytes; B2 says 5 MB. Tests set it small so a "large file" is a few MiB. */
  absoluteMinimumPartSize?: number;
  /** Parent for the temp dir that holds the stored bytes (default os.tmpdir()). */
  tmpRoot?: string;
}

/** An injected failure: an HTTP status with B2's error body, or a connection reset. */
export interface B2Fault {
  /** 503 (default) → service_unavailable, 500 → internal_error, 429 → too_many_requests, 408, 401 → expired_auth_token. */
  status?: number;
  /** Which operations it hits; every operation when absent. */
  op?: B2Op | readonly B2Op[];
  message?: string;
  /** Destroy the socket instead of answering, after reading `afterBytes` of the request body. */
  reset?: boolean;
  afterBytes?: number;
}

export interface B2RequestRecord {
  op: B2Op | "unknown";
  method: string;
  path: string;
  status: number | null;
  at: number;
  /** True when an injected fault answered it. */
  injected: boolean;
}

export interface B2TestServer {
  /** Base URL: API, upload and download host in one. */
  url: string;
  /** What the worker's B2_AUTHORIZE_URL should be. */
  authorizeUrl: string;
  keyId: string;
  appKey: string;
  accountId: string;
  bucketName: string;
  bucketId: string;
  /** Temp dir holding the stored bytes; removed by close(). */
  dir: string;
  /** The worker's B2 settings pointing at this server. */
  env(): Record<string, string>;
  /** Every auth and upload token issued so far answers 401 expired_auth_token from now on. */
  expireTokens(): void;
  /** The next `n` requests matching `fault.op` fail as described. */
  failNext(n: number, fault?: B2Fault): void;
  /** Requests matching `fault.op` fail for the next `ms` milliseconds. */
  failFor(ms: number, fault?: B2Fault): void;
  clearFaults(): void;
  /** Requests seen per operation (faulted ones included). */
  requestCount(op?: B2Op): number;
  readonly requests: readonly B2RequestRecord[];
  listObjects(): Omit<B2StoredObject, "path">[];
  readObject(name: string): Promise<Buffer>;
  /** Disk path of a stored object, to compare big files without loading them. */
  objectPath(name: string): string | undefined;
  /** Large files started and neither finished nor cancelled. */
  unfinishedLargeFiles(): { fileId: string; fileName: string; parts: number }[];
  close(): Promise<void>;
}

interface FaultRule {
  fault: B2Fault;
  remaining: number;
  until: number;
}

type Route = { op: B2Op; version: number; id?: string } | { op: "unknown" };

function route(method: string, pathname: string): Route {
  if (pathname.startsWith("/file/")) return { op: "download", version: 2 };
  const m = /^\/b2api\/v([123])\/b2_([a-z_]+)(?:\/([^/]+)(?:\/[^/]*)?)?$/.exec(pathname);
  if (!m) return { op: "unknown" };
  const version = Number(m[1]);
  const name = m[2] ?? "";
  if (name === "authorize_account") return { op: "authorize", version };
  if (name === "upload_file" && m[3] && method === "POST") return { op: "upload", version, id: m[3] };
  if (name === "upload_part" && m[3] && method === "POST") return { op: "upload_part", version, id: decodeURIComponent(m[3]) };
  if (name === "download_file_by_id") return { op: "download", version };
  if (isApiOp(name) && (B2_OPS as readonly string[]).includes(name)) return { op: name as B2Op, version };
  return { op: "unknown" };
}

function matches(fault: B2Fault, op: B2Op | "unknown"): boolean {
  if (fault.op === undefined) return true;
  return typeof fault.op === "string" ? fault.op === op : fault.op.includes(op as B2Op);
}

/** Reads `afterBytes` of the body, then kills the socket: a connection reset mid-upload. */
function resetConnection(req: IncomingMessage, afterBytes: number): void {
  let seen = 0;
  if (afterBytes <= 0) {
    req.socket.destroy();
    return;
  }
  req.on("data", (c: Buffer) => {
    seen += c.length;
    if (seen >= afterBytes) req.socket.destroy();
  });
  req.on("end", () => req.socket.destroy());
}

/**
 * A B2 native-API server on 127.0.0.1:0 that answers `backblaze-b2@1.7.1` as Backblaze does:
 * token checks, SHA-1 checks, large files in parts, B2's error bodies, bytes kept on disk.
 */
export async function startB2TestServer(opts: B2TestServerOptions = {}): Promise<B2TestServer> {
  const dir = await mkdtemp(join(opts.tmpRoot ?? tmpdir(), "fleet-b2-"));
  const bucketId = randomBytes(12).toString("hex");
  const store = new B2Store(dir, bucketId);
  await store.init();
  const state: B2State = {
    url: "",
    accountId: opts.accountId ?? "a1b2c3d4e5f6",
    keyId: opts.keyId ?? "0014a1b2c3d4e5f0000000001",
    appKey: opts.appKey ?? "K001fleetTestApplicationKey",
    bucketId,
    bucketName: opts.bucketName ?? "fleet-test-bucket",
    bucketType: opts.bucketType ?? "allPublic",
    restrictedToBucket: opts.restrictedToBucket ?? true,
    recommendedPartSize: opts.recommendedPartSize ?? 100_000_000,
    absoluteMinimumPartSize: opts.absoluteMinimumPartSize ?? 5_000_000,
    store,
    tokens: new TokenRegistry(),
  };
  const counts = new Map<B2Op, number>();
  const requests: B2RequestRecord[] = [];
  let faults: FaultRule[] = [];

  function takeFault(op: B2Op | "unknown"): B2Fault | null {
    const now = Date.now();
    faults = faults.filter((f) => f.remaining > 0 && f.until > now);
    const rule = faults.find((f) => matches(f.fault, op));
    if (!rule) return null;
    rule.remaining -= 1;
    return rule.fault;
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse, r: Route, record: B2RequestRecord): Promise<void> {
    const fault = takeFault(r.op);
    if (fault) {
      record.injected = true;
      if (fault.reset) return resetConnection(req, fault.afterBytes ?? 0);
      throw faultError(fault.status ?? 503, fault.message);
    }
    const accountToken = (): void => state.tokens.check(header(req, "authorization"), { kind: "account" });
    const url = new URL(req.url ?? "/", state.url);
    switch (r.op) {
      case "unknown":
        throw new B2HttpError(404, "not_found", `no such API: ${req.method ?? "?"} ${url.pathname}`);
      case "authorize":
        await drain(req);
        return sendJson(res, 200, authorize(state, req, r.version));
      case "download": {
        let obj: B2StoredObject | undefined;
        if (url.pathname.startsWith("/file/")) {
          const [, , bucket = "", ...rest] = url.pathname.split("/");
          const name = rest.map((s) => decodeURIComponent(s)).join("/");
          obj = bucket === state.bucketName ? store.objects.get(name) : undefined;
        } else {
          obj = store.byId(url.searchParams.get("fileId"));
        }
        return sendObject(state, req, res, obj, (t) => state.tokens.check(t, { kind: "account" }));
      }
      case "upload":
        state.tokens.check(header(req, "authorization"), { kind: "upload", bucketId: r.id ?? "" });
        return sendJson(res, 200, await handleUpload(state, req));
      case "upload_part":
        state.tokens.check(header(req, "authorization"), { kind: "part", fileId: r.id ?? "" });
        return sendJson(res, 200, await handleUploadPart(state, req, r.id ?? ""));
      default:
        accountToken();
        return sendJson(res, 200, await handleApiCall(state, r.op, req));
    }
  }

  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? "/", "http://x").pathname;
    const r = route(req.method ?? "GET", pathname);
    if (r.op !== "unknown") counts.set(r.op, (counts.get(r.op) ?? 0) + 1);
    const record: B2RequestRecord = { op: r.op, method: req.method ?? "", path: pathname, status: null, at: Date.now(), injected: false };
    requests.push(record);
    res.on("finish", () => (record.status = res.statusCode));
    dispatch(req, res, r, record).catch(async (err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const b2err = err instanceof B2HttpError ? err : new B2HttpError(500, "internal_error", err instanceof Error ? err.message : String(err));
      await drain(req);
      if (!res.destroyed) sendB2Error(res, b2err);
    });
  });
  // A 1 GiB upload over loopback must not hit Node's default 5-minute request timeout on a busy box.
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const strip = ({ path: _path, ...rest }: B2StoredObject): Omit<B2StoredObject, "path"> => rest;

  return {
    url: state.url,
    authorizeUrl: `${state.url}/b2api/v2/b2_authorize_account`,
    keyId: state.keyId,
    appKey: state.appKey,
    accountId: state.accountId,
    bucketName: state.bucketName,
    bucketId,
    dir,
    env: () => ({
      B2_KEY_ID: state.keyId,
      B2_APP_KEY: state.appKey,
      B2_BUCKET_NAME: state.bucketName,
      B2_AUTHORIZE_URL: `${state.url}/b2api/v2/b2_authorize_account`,
    }),
    expireTokens: () => state.tokens.expireAll(),
    failNext: (n, fault = {}) => void faults.push({ fault, remaining: n, until: Infinity }),
    failFor: (ms, fault = {}) => void faults.push({ fault, remaining: Infinity, until: Date.now() + ms }),
    clearFaults: () => void (faults = []),
    requestCount: (op) => (op ? (counts.get(op) ?? 0) : [...counts.values()].reduce((a, b) => a + b, 0)),
    requests,
    listObjects: () => [...store.objects.values()].sort((a, b) => a.fileName.localeCompare(b.fileName)).map(strip),
    readObject: (name) => store.read(name),
    objectPath: (name) => store.objects.get(name)?.path,
    unfinishedLargeFiles: () => [...store.largeFiles.values()].map((lf) => ({ fileId: lf.fileId, fileName: lf.fileName, parts: lf.parts.size })),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
